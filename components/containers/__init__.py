"""The container model shared by the platforms that run containers themselves (local Docker,
Swarm): each tool as a platform-neutral `Workload` (workloads.py), and what watches them:
Prometheus scrape jobs, alert rules, Alertmanager, bucket-freshness probes (monitoring.py)."""
