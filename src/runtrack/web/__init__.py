"""The web dashboard: static files served at ``/`` that read the REST API and its event streams."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
