"""Mounting generated connectrpc ASGI applications on the FastAPI app at their standard paths."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from runtrack.api.connect.errors import ErrorInterceptor


def mount_service(app: FastAPI, asgi_cls: Any, implementation: Any) -> None:
    """Mount ``asgi_cls(implementation)`` (e.g. ``RunServiceASGIApplication``) at its service path."""
    service_app = asgi_cls(implementation, interceptors=(ErrorInterceptor(),))
    app.mount(service_app.path, service_app)
