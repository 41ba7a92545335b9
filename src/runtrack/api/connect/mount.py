"""Mounting generated connectrpc ASGI applications on the FastAPI app at their standard paths."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from runtrack.api.connect import codecs
from runtrack.api.connect.errors import ErrorInterceptor
from runtrack.api.connect.run_watch import DisconnectAware


def mount_service(app: FastAPI, asgi_cls: Any, implementation: Any) -> None:
    """Mount ``asgi_cls(implementation)`` (e.g. ``RunServiceASGIApplication``) at its service path.

    Malformed bodies (bad protobuf, bad JSON, bad gzip) answer INVALID_ARGUMENT, not UNKNOWN.
    """
    service_app = asgi_cls(implementation, interceptors=(ErrorInterceptor(),), compressions=codecs.compressions())
    # The generated constructors do not take codecs; the base class keeps them by name.
    service_app._codecs = {c.name(): c for c in codecs.codecs()}
    app.mount(service_app.path, DisconnectAware(service_app))
