"""What every platform shares: the stack config (model in config.py, loading in loading.py), the
pins, lifecycle rules, access grants, buckets, identities, the Thanos hub/spoke topology and the
tool config renderers. Nothing here imports a platform package."""
