"""Running experiments: the engine, and where it runs (locally or in Kubernetes)."""
