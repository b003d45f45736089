"""Jobs orchestrate: they take a validated request, run it on a model, and build the result."""
