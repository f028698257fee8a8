from .entrypoints.cli.main import app

app()
