"""Tasks: each is one module with an input model and one `run(inputs, ctx)`."""
