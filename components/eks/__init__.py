"""Target aws: the tools as Helm charts on an existing EKS cluster (platform.py), one module per
tool's release (loki, tempo, prometheus, thanos), what watches them (monitoring.py) and what they
share (base.py)."""
