"""vmgallery: a self-hosted compute image gallery that speaks Azure Compute Gallery's REST API."""

__version__ = "0.1.0"
