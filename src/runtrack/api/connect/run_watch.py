"""flyteidl2 ``RunService`` server streams: WatchRuns, WatchRunDetails, WatchActions,
WatchActionDetails and WatchClusterEvents (a mixin of :class:`RunServiceImpl`).

Each stream sends the current state at once, then every change. Details streams end after the
terminal message (the flyte SDK re-subscribes to a stream that ends earlier). On an idle stream
a keep-alive goes out every ``keepalive_s``: the last details message again (idempotent for
readers) or an empty list message. When the client goes away the stream ends at once (see
:class:`DisconnectAware`) and releases its subscription.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from connectrpc.request import RequestContext
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtrack.api.connect import convert_runs as out
from runtrack.api.connect.errors import caller_of
from runtrack.api.connect.filters import filters_to_node
from runtrack.api.connect.validation import validate
from runtrack.domain.filter_eval import action_matches
from runtrack.domain.filters import ACTION_FIELDS, Node, Op, Pred, and_, prepare
from runtrack.domain.models import ROOT_ACTION, Action, children_phase_counts
from runtrack.service.container import Services
from runtrack.service.watch_streams import Disconnect, RunDetailsState

Ctx = RequestContext[Any, Any]
ItemT = TypeVar("ItemT")
MsgT = TypeVar("MsgT")
WATCH_RUNS_SNAPSHOT = 100

_DISCONNECT: ContextVar[Disconnect | None] = ContextVar("runtrack_disconnect", default=None)


class DisconnectAware:
    """ASGI wrapper that tells a running stream its client went away.

    connectrpc notices a disconnect only when the next message is sent; an idle watch would hold
    its subscription until then. This wrapper fires a :class:`Disconnect` (found by the handler
    through a context variable) as soon as the server reports ``http.disconnect``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stop = Disconnect()
        token = _DISCONNECT.set(stop)

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                stop.fire()
            return message

        try:
            await self.app(scope, watched_receive, send)
        finally:
            _DISCONNECT.reset(token)


def _stop() -> Disconnect | None:
    return _DISCONNECT.get()


def _eq(field: str, value: str) -> Pred | None:
    return Pred(field, Op.EQ, value) if value else None


def watch_runs_scope(req: rs.WatchRunsRequest) -> Node | None:
    which = req.WhichOneof("target")
    if which == "org":
        return _eq("org", req.org)
    if which == "project_id":
        p = req.project_id
        return and_(_eq("org", p.organization), _eq("project", p.name), _eq("domain", p.domain))
    if which == "task_id":
        t = req.task_id
        return and_(
            _eq("org", t.org), _eq("project", t.project), _eq("domain", t.domain),
            _eq("task_name", t.name), _eq("task_version", t.version),
        )
    return None  # a cluster: every run (runs are not assigned to clusters here)


def _run_details_msg(state: RunDetailsState) -> rs.WatchRunDetailsResponse:
    return rs.WatchRunDetailsResponse(details=out.run_details_pb(state.run, state.root))


def _root_details_msg(state: RunDetailsState) -> rs.WatchActionDetailsResponse:
    return rs.WatchActionDetailsResponse(details=out.action_details_pb(state.root, run=state.run))


def _action_details_msg(action: Action) -> rs.WatchActionDetailsResponse:
    return rs.WatchActionDetailsResponse(details=out.action_details_pb(action))


class RunWatchMixin:
    """The Watch* methods; the class using it provides ``svc``."""

    @property
    def svc(self) -> Services:
        raise NotImplementedError

    async def watch_run_details(
        self, request: rs.WatchRunDetailsRequest, ctx: Ctx
    ) -> AsyncIterator[rs.WatchRunDetailsResponse]:
        validate(request)
        run_id = out.run_id_from_pb(request.run_id)
        async for msg in self._latest(self.svc.watch.run_details(run_id, _stop()), RunDetailsState, _run_details_msg):
            yield msg

    async def watch_action_details(
        self, request: rs.WatchActionDetailsRequest, ctx: Ctx
    ) -> AsyncIterator[rs.WatchActionDetailsResponse]:
        validate(request)
        run_id = out.run_id_from_pb(request.action_id.run)
        name = request.action_id.name
        if name == ROOT_ACTION:
            stream = self._latest(self.svc.watch.run_details(run_id, _stop()), RunDetailsState, _root_details_msg)
        else:
            stream = self._latest(self.svc.watch.action_details(run_id, name, _stop()), Action, _action_details_msg)
        async for msg in stream:
            yield msg

    async def _latest(
        self, items: AsyncIterator[object], kind: type[ItemT], render: Callable[[ItemT], MsgT]
    ) -> AsyncIterator[MsgT]:
        """Each new state rendered (once for all watchers); on a keep-alive the last message again."""
        last: MsgT | None = None
        async for item in items:
            if isinstance(item, kind):
                last = self.svc.watch.renders.get(item, render)
            if last is not None:
                yield last

    async def watch_actions(
        self, request: rs.WatchActionsRequest, ctx: Ctx
    ) -> AsyncIterator[rs.WatchActionsResponse]:
        validate(request)
        run_id = out.run_id_from_pb(request.run_id)
        node = prepare(filters_to_node(request.filter, ACTION_FIELDS), caller_of(ctx) or None, ACTION_FIELDS)
        known: dict[str, Action] = {}  # every action of the run, as last sent
        async for item in self.svc.watch.actions(run_id, _stop()):
            if not isinstance(item, list):
                yield rs.WatchActionsResponse()
                continue
            known.update((a.name, a) for a in item)
            # A child's new phase changes its parent's children_phase_counts: send the parent too.
            send = {a.name: a for a in item}
            for a in item:
                if a.parent is not None and a.parent in known:
                    send.setdefault(a.parent, known[a.parent])
            counts = children_phase_counts(known.values())
            yield rs.WatchActionsResponse(
                enriched_actions=[
                    rd.EnrichedAction(
                        action=out.action_pb(a),
                        meets_filter=action_matches(node, a),
                        children_phase_counts={out.phase_pb(p): n for p, n in counts.get(a.name, {}).items()},
                    )
                    for a in send.values()
                ]
            )

    async def watch_runs(self, request: rs.WatchRunsRequest, ctx: Ctx) -> AsyncIterator[rs.WatchRunsResponse]:
        validate(request)
        node = prepare(watch_runs_scope(request), caller_of(ctx) or None)

        async for events in self.svc.watch.runs(
            node, snapshot_limit=WATCH_RUNS_SNAPSHOT, stop=_stop()
        ):
            runs = [self.svc.watch.renders.get(ev.run, out.run_pb) for ev in events if ev.run is not None]
            if not runs:
                if any(ev.kind in ("ready", "keepalive") for ev in events):
                    yield rs.WatchRunsResponse()
                continue
            for i in range(0, len(runs), WATCH_RUNS_SNAPSHOT):
                yield rs.WatchRunsResponse(runs=runs[i : i + WATCH_RUNS_SNAPSHOT])

    async def watch_cluster_events(
        self, request: rs.WatchClusterEventsRequest, ctx: Ctx
    ) -> AsyncIterator[rs.WatchClusterEventsResponse]:
        validate(request)
        run_id = out.run_id_from_pb(request.id.run)
        sent: dict[tuple[Any, ...], int] = {}
        first = True
        async for item in self.svc.watch.cluster_events(run_id, request.id.name, request.attempt, _stop()):
            if not isinstance(item, list):
                yield rs.WatchClusterEventsResponse()
                continue
            fresh = []
            for att in item[0].attempt_list:
                if request.attempt and att.attempt != request.attempt:
                    continue
                for pb, e in zip(out.attempt_pb(att).cluster_events, att.cluster_events, strict=True):
                    key = (att.attempt, e.occurred_at, e.message, e.reason, e.type, e.source)
                    if sent.get(key) != e.count:
                        sent[key] = e.count
                        fresh.append(pb)
            if fresh or first:
                yield rs.WatchClusterEventsResponse(cluster_events=fresh)
            first = False
