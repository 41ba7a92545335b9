"""flyteidl2 ``RunService`` over Connect: create, read, list and abort runs and actions.

The streaming Watch* methods live in ``run_watch.py`` (a mixin); methods not implemented here
answer UNIMPLEMENTED through the generated protocol class's defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from connectrpc.request import RequestContext
from flyteidl2.task import task_definition_pb2 as td
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow.run_service_connect import RunService

from runtrack.api.connect import convert_run_requests as req_in
from runtrack.api.connect import convert_runs as out
from runtrack.api.connect.errors import caller_of
from runtrack.api.connect.filters import list_request_to_query
from runtrack.api.connect.run_watch import RunWatchMixin
from runtrack.api.connect.validation import validate
from runtrack.domain.filters import ACTION_FIELDS
from runtrack.domain.models import ROOT_ACTION, RunId, TaskRef
from runtrack.domain.query import ACTION_SORT_ALIASES, Sort
from runtrack.service.container import Services
from runtrack.service.queries import ACTIONS_DEFAULT_SORT
from runtrack.storage.tasks import TaskKey

Ctx = RequestContext[Any, Any]


class RunServiceImpl(RunWatchMixin, RunService):  # type: ignore[misc]
    """The unary RunService methods. ``services`` returns the running app's service container."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services

    @property
    def svc(self) -> Services:
        return self._services()

    async def create_run(self, request: rs.CreateRunRequest, ctx: Ctx) -> rs.CreateRunResponse:
        validate(request)
        run_id, generate = req_in.create_target(request)
        task = await self._task_of(request, run_id)
        new = req_in.new_run(request, run_id, task, caller_of(ctx))
        if generate:  # an empty name: the executor's create_run generates one
            new = replace(new, id=replace(new.id, name=""))
        run = await self.svc.executor.create_run(new)  # publishes the change, sets a concurrency key
        return rs.CreateRunResponse(run=out.run_pb(run))

    async def _task_of(self, request: rs.CreateRunRequest, run_id: RunId) -> TaskRef:
        if request.HasField("task_spec"):
            return req_in.task_ref_from_spec(request.task_spec)
        tid = request.task_id
        key = TaskKey(tid.org or run_id.org, tid.project, tid.domain, tid.name, tid.version)
        task = await self.svc.tasks.get(key)
        spec = out.from_json(task.spec, td.TaskSpec())
        return req_in.task_ref_from_spec(spec, tid)

    async def abort_run(self, request: rs.AbortRunRequest, ctx: Ctx) -> rs.AbortRunResponse:
        """Abort the run's non-terminal actions and the run; a terminal run stays as it is."""
        validate(request)
        await self.svc.executor.abort_run(out.run_id_from_pb(request.run_id), request.reason, caller_of(ctx))
        return rs.AbortRunResponse()

    async def abort_action(self, request: rs.AbortActionRequest, ctx: Ctx) -> rs.AbortActionResponse:
        validate(request)
        run_id = out.run_id_from_pb(request.action_id.run)
        await self.svc.executor.abort_action(run_id, request.action_id.name, request.reason, caller_of(ctx))
        return rs.AbortActionResponse()

    async def get_run_details(self, request: rs.GetRunDetailsRequest, ctx: Ctx) -> rs.GetRunDetailsResponse:
        validate(request)
        run_id = out.run_id_from_pb(request.run_id)
        run, root = await self.svc.runs.get_run_with_root(run_id)
        return rs.GetRunDetailsResponse(details=out.run_details_pb(run, root))

    async def get_action_details(
        self, request: rs.GetActionDetailsRequest, ctx: Ctx
    ) -> rs.GetActionDetailsResponse:
        validate(request)
        run_id = out.run_id_from_pb(request.action_id.run)
        name = request.action_id.name
        if name == ROOT_ACTION:
            run, root = await self.svc.runs.get_run_with_root(run_id)
            return rs.GetActionDetailsResponse(details=out.action_details_pb(root, run=run))
        action = await self.svc.runs.get_action(run_id, name)
        return rs.GetActionDetailsResponse(details=out.action_details_pb(action))

    async def get_action_data(self, request: rs.GetActionDataRequest, ctx: Ctx) -> rs.GetActionDataResponse:
        validate(request)
        action = await self.svc.runs.get_action(out.run_id_from_pb(request.action_id.run), request.action_id.name)
        inputs, outputs = out.action_data(action)
        return rs.GetActionDataResponse(inputs=inputs, outputs=outputs)

    async def list_runs(self, request: rs.ListRunsRequest, ctx: Ctx) -> rs.ListRunsResponse:
        validate(request)
        req_in.page_limit(request.request)
        q = list_request_to_query(
            request.request, caller=caller_of(ctx) or None, extra=req_in.list_runs_scope(request),
            default_sort=Sort("created_at", descending=True),
        )
        page = await self.svc.queries.list_runs(q)
        return rs.ListRunsResponse(runs=[out.run_pb(r) for r in page.items], token=page.next_cursor or "")

    async def list_actions(self, request: rs.ListActionsRequest, ctx: Ctx) -> rs.ListActionsResponse:
        validate(request)
        req_in.page_limit(request.request)
        run_id = out.run_id_from_pb(request.run_id)
        q = list_request_to_query(
            request.request, caller=caller_of(ctx) or None, allowed=ACTION_FIELDS,
            sort_aliases=ACTION_SORT_ALIASES, default_sort=ACTIONS_DEFAULT_SORT,
        )
        page = await self.svc.queries.list_actions(run_id, q.filter, q.limit, q.cursor, sort=q.sort)
        return rs.ListActionsResponse(actions=[out.action_pb(a) for a in page.items], token=page.next_cursor or "")
