"""canarist: canary testing and release validation for ML inference services."""

__version__ = "0.1.0"
