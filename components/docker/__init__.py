"""Target local (local.py: containers on this machine's Docker engine, minio.py: the MinIO they
store into) and target hetzner (swarm.py: services on an existing Docker Swarm)."""
