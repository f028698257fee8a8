"""The driving side: what calls the use cases (the HTTP API, the worker runner, the CLI)."""
