"""The Pulumi program's components, laid out as the architecture:

- core/        what every platform shares: the config model and its loading, pins, lifecycle rules,
               access grants, buckets, identities, the Thanos hub/spoke topology, and one renderer
               per tool config (renderers/). Imports nothing above it.
- containers/  the platform-neutral container model (workloads and what watches them) for the
               platforms that run containers themselves.
- eks/         target aws (aws.platform eks, the default): Helm charts on an existing EKS cluster.
- docker/      target local (containers on this machine's engine, MinIO) and target hetzner
               (services on Docker Swarm).
- ec2/         target aws with aws.platform ec2: the tools on EC2 fleets without Kubernetes.
- targets.py   the one seam: which storage, identity and platform a stack's target uses. Each
               platform package, and its provider SDKs, load only when a stack uses it.
"""
