"""Programs that run inside a container, not in the Pulumi program: shipped as files next to the
tools they watch (standard library only)."""
