"""Wiring: one ASGI app on one port carrying health, REST, Connect and the dashboard."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtrack import __version__
from runtrack.api import health
from runtrack.api.connect.internal_service import mount_executor_services
from runtrack.api.errors import classify
from runtrack.api.metrics import Metrics
from runtrack.api.rest import concurrency as rest_concurrency
from runtrack.api.rest import executor as rest_executor
from runtrack.api.rest import fleet as rest_fleet
from runtrack.api.rest import logs as rest_logs
from runtrack.api.rest import runs as rest_runs
from runtrack.api.rest import watch as rest_watch
from runtrack.config import Settings
from runtrack.errors import RuntrackError
from runtrack.service.background import Supervisor
from runtrack.service.container import Services
from runtrack.storage import migrate
from runtrack.web import STATIC_DIR

log = logging.getLogger("runtrack.app")


class TimingMiddleware:
    """Adds ``Server-Timing: app;dur=<ms>`` and records request metrics (pure ASGI, stream-safe)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                dur = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={dur:.3f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or _connect_route(scope.get("path", ""))
            self.metrics.requests.labels(path, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


def settle_heap() -> None:
    """Keep the cyclic garbage collector's pauses off the paths of requests and watch deliveries.

    * Everything alive after start-up (about 150,000 objects of the libraries, the app, the schema)
      is frozen: it lives as long as the process anyway, and every full collection would walk it
      (about 70 ms on a 2-core machine).
    * The youngest generation is collected after 50,000 net allocations instead of 700, and full
      collections come 20 times rarer: with a thousand open watch streams the long-lived heap is
      large again, and the default thresholds ran a 60-100 ms full collection every few changes.
      Nearly all garbage here is freed by reference counting; the collector only finds the rare
      cycle, so collecting it less often costs little memory.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _connect_route(path: str) -> str:
    return path if path.startswith("/flyteidl2.") else "other"


def _error_response(exc: BaseException) -> JSONResponse:
    mapping, message = classify(exc)
    return JSONResponse({"error": {"code": mapping.name, "message": message}}, status_code=mapping.http)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the app. Nothing connects until the lifespan starts."""
    metrics = Metrics()
    supervisor = Supervisor()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services.build(settings)
        app.state.services = svc
        svc.executor.observe = lambda path, outcome, reason: metrics.transitions.labels(path, outcome, reason).inc()
        if settings.migrate_on_start:
            before, after = await migrate.upgrade(svc.db)
            log.info("schema ready", extra={"fields": {"from": before, "to": after}})
        await svc.fanout.start()
        rest_watch.install_metrics(metrics, svc.watch.hub)
        rest_watch.end_streams_on_shutdown(svc.watch.hub)
        start_background(svc, supervisor)
        settle_heap()
        log.info(
            "runtrack serving",
            extra={"fields": {"database": svc.db.dialect, "version": __version__}},
        )
        try:
            yield
        finally:
            await supervisor.stop()
            await svc.fanout.stop()
            if services is None:
                await svc.close()

    app = FastAPI(
        title="runtrack",
        version=__version__,
        description="A runs service: workflow runs, their actions and attempts.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.supervisor = supervisor

    @app.exception_handler(Exception)
    async def _any_error(_req: Request, exc: Exception) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "invalid_argument", "message": _validation_message(exc)}}, status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "http_error", "message": str(exc.detail)}}, status_code=exc.status_code
        )

    @app.exception_handler(RuntrackError)
    async def _domain(_req: Request, exc: RuntrackError) -> JSONResponse:
        return _error_response(exc)

    app.include_router(health.router)
    app.include_router(rest_executor.router)  # the executors' write paths, the busiest, are matched first
    app.include_router(rest_fleet.router)
    app.include_router(rest_runs.router)
    app.include_router(rest_watch.router)
    app.include_router(rest_logs.router)
    app.include_router(rest_concurrency.router)
    mount_connect(app)
    mount_dashboard(app)
    _document_schemas(app, rest_executor.OPENAPI_SCHEMAS)
    app.add_middleware(TimingMiddleware, metrics=metrics)
    return app


def _document_schemas(app: FastAPI, schemas: dict[str, Any]) -> None:
    """Add component schemas of request bodies that endpoints read themselves to the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        doc = generate()  # built once, then kept by FastAPI as app.openapi_schema
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in schemas.items():
            components.setdefault(name, schema)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def mount_dashboard(app: FastAPI) -> None:
    """The web dashboard: ``/`` serves the page, ``/static`` its script and styles."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")


def start_background(svc: Services, supervisor: Supervisor) -> None:
    """Start the periodic jobs (sweepers, cleanup, retention) of this replica."""
    supervisor.spawn("log-cleanup", svc.log_cleanup.run_forever())
    policy = svc.settings.retention
    if policy is not None:
        supervisor.every("retention", policy.interval.total_seconds(), lambda: svc.retention.run_round(policy))
    supervisor.every("heartbeat-sweep", svc.settings.sweep_interval.total_seconds(), svc.executor.sweep)


def mount_connect(app: FastAPI) -> None:
    """Mount the flyteidl2 Connect services at their standard paths."""
    from flyteidl2.task.task_service_connect import TaskServiceASGIApplication
    from flyteidl2.workflow.run_service_connect import RunServiceASGIApplication

    from runtrack.api.connect.mount import mount_service
    from runtrack.api.connect.run_service import RunServiceImpl
    from runtrack.api.connect.task_service import TaskServiceImpl

    def current() -> Services:
        svc: Services = app.state.services
        return svc

    mount_service(app, RunServiceASGIApplication, RunServiceImpl(current))
    mount_service(app, TaskServiceASGIApplication, TaskServiceImpl(current))
    mount_executor_services(app)
