"""The ec2 platform: Grafana, Loki, Tempo and Thanos on EC2 fleets without Kubernetes
(`aws.platform: ec2`). platform.py is the entry point; topology.py the fleets and flows;
network.py Cloud Map, security groups and the load balancer; fleet.py launch templates and Auto
Scaling groups; userdata.py what runs on the instances (with the
agent, probes/ec2_agent.py); database.py Grafana's database."""
