"""The HTTP server (FastAPI): the only package that imports the web framework."""
