"""REST: ``GET /api/v1/watch``, the changes of runs as server-sent events.

Events (``event:`` names): ``run`` (data: the run as in ``GET /api/v1/runs``), ``deleted`` (data:
the run's identity), ``reset`` (drop what you hold: a fresh snapshot follows), ``ready`` (the
snapshot or catch-up is complete), ``error`` (the stream failed after it started, and ends; it has
no id). Every event and every keep-alive carries an ``id:``, the
stream's watermark; a reconnect with ``Last-Event-ID`` resumes from it (see docs/watch.md).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from types import FrameType
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Receive, Scope, Send

from runtrack.api.errors import classify
from runtrack.api.metrics import Metrics
from runtrack.api.rest.common import services
from runtrack.api.rest.filters import RunFilter, run_filter
from runtrack.api.rest.schemas import run_out
from runtrack.domain.models import Run, RunId
from runtrack.service.container import Services
from runtrack.service.watch import RenderCache, WatchHub
from runtrack.service.watch_streams import Disconnect, RunsEvent

router = APIRouter(prefix="/api/v1", tags=["watch"])


def parse_event_id(value: str | None) -> float | None:
    """A watermark from an event id (microseconds since the epoch); None when absent or not ours."""
    if not value:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return int(text) / 1_000_000


def event_id(watermark: float) -> str:
    return str(int(watermark * 1_000_000))


def _run_id_json(rid: RunId) -> dict[str, str]:
    return {"org": rid.org, "project": rid.project, "domain": rid.domain, "name": rid.name}


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _run_frame(run: Run, watermark: float) -> bytes:
    return f"id: {event_id(watermark)}\nevent: run\ndata: {run_out(run).model_dump_json()}\n\n".encode()


def format_event(ev: RunsEvent, renders: RenderCache | None = None) -> bytes:
    """One server-sent event. A run's event is encoded once for every watcher handed the same
    record with the same id (``renders``): live changes share their dispatch time as their id."""
    if ev.kind == "run" and ev.run is not None:
        if renders is None:
            return _run_frame(ev.run, ev.watermark)
        return renders.get(ev.run, _run_frame, ev.watermark)
    eid = event_id(ev.watermark)
    if ev.kind == "keepalive":
        return f": keep-alive\nid: {eid}\n\n".encode()
    data = _json(_run_id_json(ev.run_id)) if ev.kind == "deleted" and ev.run_id is not None else "{}"
    return f"id: {eid}\nevent: {ev.kind}\ndata: {data}\n\n".encode()


def _error_frame(exc: BaseException) -> bytes:
    mapping, message = classify(exc)
    return f"event: error\ndata: {_json({'code': mapping.name, 'message': message})}\n\n".encode()


class EventStream(Response):
    """A ``text/event-stream`` response that writes each step of a stream as one ASGI message.

    Lighter than a generic streaming response: no task group and no per-event generator layers,
    and an event encoded once is written to every watcher as the same bytes. A helper task waits
    for the client to go away and then ends the stream through its :class:`Disconnect`. An error
    after the headers went out ends the stream with an ``error`` event.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: Callable[[Disconnect], AsyncGenerator[bytes, None]]) -> None:
        super().__init__(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # chunked
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stop = Disconnect()

        async def wait_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            stop.fire()

        watcher = asyncio.get_running_loop().create_task(wait_for_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            try:
                async with aclosing(self.frames(stop)) as frames:
                    async for body in frames:
                        await send({"type": "http.response.body", "body": body, "more_body": True})
            except Exception as exc:  # the headers are out: report in-band, then end the stream
                await send({"type": "http.response.body", "body": _error_frame(exc), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()


@router.get(
    "/watch",
    status_code=200,
    response_class=EventStream,
    responses={200: {"content": {"text/event-stream": {}}, "description": "A stream of server-sent events."}},
)
async def watch_runs(
    flt: RunFilter = Depends(run_filter),
    snapshot: int = Query(50, ge=0, le=200, description="How many matching runs to send first (0: none)."),
    keepalive: float = Query(15.0, gt=0, le=300, description="Seconds between keep-alives on an idle stream."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    resume: str | None = Query(None, description="Like the Last-Event-ID header (for clients that cannot set it)."),
    svc: Services = Depends(services),
) -> EventStream:
    """Server-sent events for runs matching the filters of `GET /api/v1/runs`."""
    since = parse_event_id(last_event_id or resume)
    watch, renders = svc.watch, svc.watch.renders

    async def frames(stop: Disconnect) -> AsyncGenerator[bytes, None]:
        stream = watch.runs(
            flt.node, snapshot_limit=snapshot, since=since, stop=stop, keepalive_s=keepalive
        )
        async with aclosing(stream):
            async for events in stream:
                if len(events) == 1:
                    yield format_event(events[0], renders)
                else:
                    yield b"".join(format_event(ev, renders) for ev in events)

    return EventStream(frames)


class WatchCollector(Collector):
    """Watch gauges: open subscriptions, dispatched/coalesced changes, overflows, resyncs."""

    def __init__(self, hub: WatchHub) -> None:
        self.hub = hub

    def collect(self) -> Any:
        g = GaugeMetricFamily("runtrack_watch_subscriptions", "Open watch subscriptions in this process")
        g.add_metric([], self.hub.subscription_count)
        yield g
        t = GaugeMetricFamily("runtrack_asyncio_tasks", "asyncio tasks alive in this process")
        try:
            t.add_metric([], len(asyncio.all_tasks()))
        except RuntimeError:  # collected outside the event loop
            t.add_metric([], -1)
        yield t
        for name, value in self.hub.stats.items():
            c = GaugeMetricFamily(f"runtrack_watch_{name}", f"Watch changes {name} since start")
            c.add_metric([], value)
            yield c


def install_metrics(metrics: Metrics, hub: WatchHub) -> None:
    metrics.registry.register(WatchCollector(hub))


def end_streams_on_shutdown(hub: WatchHub) -> None:
    """On SIGTERM/SIGINT, end every watch stream at once, then let the server's own handler run.

    The server waits for open responses before it stops; watch streams never finish by themselves,
    so without this a shutdown would wait for its whole grace period.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.close_all)
            previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (an app run inside a test): nothing to chain
            return
