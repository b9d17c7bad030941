"""Where experiments live between tasks: a local file, or a Kubernetes Secret."""
