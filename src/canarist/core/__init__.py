"""Core: spec and result models, values, templates, metric names, expressions, errors. No I/O."""
