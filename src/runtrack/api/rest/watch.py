"""REST: ``GET /api/v1/watch``, the changes of runs as server-sent events.

Events (``event:`` names): ``run`` (data: the run as in ``GET /api/v1/runs``), ``deleted`` (data:
the run's identity), ``reset`` (drop what you hold: a fresh snapshot follows), ``ready`` (the
snapshot or catch-up is complete). Every event and every keep-alive carries an ``id:``, the
stream's watermark; a reconnect with ``Last-Event-ID`` resumes from it (see docs/watch.md).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runtrack.api.metrics import Metrics
from runtrack.api.rest.common import services
from runtrack.api.rest.filters import RunFilter, run_filter
from runtrack.api.rest.schemas import run_out
from runtrack.domain.filter_eval import matches
from runtrack.domain.filters import And, Node, Op, Pred
from runtrack.domain.models import Run, RunId
from runtrack.service.container import Services
from runtrack.service.notifier import Change
from runtrack.service.watch import RenderCache, WatchHub
from runtrack.service.watch_streams import RunsEvent

router = APIRouter(prefix="/api/v1", tags=["watch"])


def _matches(node: Node | None) -> Callable[[Run], bool]:
    def match(run: Run) -> bool:
        return matches(node, run)

    return match


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


def _run_json(run: Run) -> str:
    return run_out(run).model_dump_json()


def format_event(ev: RunsEvent, renders: RenderCache | None = None) -> str:
    eid = event_id(ev.watermark)
    if ev.kind == "keepalive":
        return f": keep-alive\nid: {eid}\n\n"
    if ev.kind == "run" and ev.run is not None:
        data = renders.get(ev.run, _run_json) if renders is not None else _run_json(ev.run)
    elif ev.kind == "deleted" and ev.run_id is not None:
        data = _json(_run_id_json(ev.run_id))
    else:
        data = "{}"
    return f"id: {eid}\nevent: {ev.kind}\ndata: {data}\n\n"


@router.get(
    "/watch",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "A stream of server-sent events."}},
)
async def watch_runs(
    flt: RunFilter = Depends(run_filter),
    snapshot: int = Query(50, ge=0, le=200, description="How many matching runs to send first (0: none)."),
    keepalive: float = Query(15.0, gt=0, le=300, description="Seconds between keep-alives on an idle stream."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    resume: str | None = Query(None, description="Like the Last-Event-ID header (for clients that cannot set it)."),
    svc: Services = Depends(services),
) -> StreamingResponse:
    """Server-sent events for runs matching the filters of `GET /api/v1/runs`."""
    since = parse_event_id(last_event_id or resume)
    stream = svc.watch.runs(
        flt.node,
        _matches(flt.node),
        scope=scope_of(flt.node),
        snapshot_limit=snapshot,
        since=since,
        keepalive_s=keepalive,
    )

    async def body() -> AsyncIterator[str]:
        try:
            async for ev in stream:
                yield format_event(ev, svc.watch.renders)
        finally:
            await stream.aclose()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def scope_of(node: Node | None) -> Callable[[Change], bool] | None:
    """A cheap pre-filter on a change's identity from the filter's top-level org/project/domain terms."""
    wanted: dict[str, str] = {}
    items = node.items if isinstance(node, And) else (node,) if node is not None else ()
    for item in items:
        if isinstance(item, Pred) and item.op is Op.EQ and item.field in ("org", "project", "domain"):
            wanted[item.field] = str(item.value)
    if not wanted:
        return None
    org, project, domain = wanted.get("org"), wanted.get("project"), wanted.get("domain")

    def accepts(c: Change) -> bool:
        rid = c.run_id
        return (
            (not org or rid.org == org)
            and (not project or rid.project == project)
            and (not domain or rid.domain == domain)
        )

    return accepts


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
