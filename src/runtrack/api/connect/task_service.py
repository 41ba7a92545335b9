"""flyteidl2 ``TaskService`` over Connect: deploy, read and list task versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectrpc.request import RequestContext
from flyteidl2.task import task_service_pb2 as ts_pb
from flyteidl2.task.task_service_connect import TaskService

from runtrack.api.connect import convert_tasks as conv
from runtrack.api.connect.convert_run_requests import page_limit
from runtrack.api.connect.errors import caller_of
from runtrack.api.connect.filters import list_request_to_query
from runtrack.api.connect.validation import validate
from runtrack.domain.filters import TASK_FIELDS, Node, Op, Pred, and_
from runtrack.domain.query import TASK_SORT_ALIASES, Sort
from runtrack.service.container import Services
from runtrack.storage.tasks import TaskScope

Ctx = RequestContext[Any, Any]
NEWEST_FIRST = Sort("created_at", descending=True)


def _scope_filter(scope: TaskScope) -> Node | None:
    return and_(
        *(
            Pred(field, Op.EQ, value)
            for field, value in (
                ("org", scope.org), ("project", scope.project), ("domain", scope.domain), ("name", scope.name)
            )
            if value
        )
    )


class TaskServiceImpl(TaskService):  # type: ignore[misc]
    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services

    @property
    def svc(self) -> Services:
        return self._services()

    async def deploy_task(self, request: ts_pb.DeployTaskRequest, ctx: Ctx) -> ts_pb.DeployTaskResponse:
        validate(request)
        await self.svc.tasks.deploy(conv.task_key(request.task_id), conv.spec_json(request.spec), by=caller_of(ctx))
        return ts_pb.DeployTaskResponse()

    async def get_task_details(
        self, request: ts_pb.GetTaskDetailsRequest, ctx: Ctx
    ) -> ts_pb.GetTaskDetailsResponse:
        validate(request)
        task = await self.svc.tasks.get(conv.task_key(request.task_id))
        return ts_pb.GetTaskDetailsResponse(details=conv.task_details_pb(task))

    async def list_tasks(self, request: ts_pb.ListTasksRequest, ctx: Ctx) -> ts_pb.ListTasksResponse:
        validate(request)
        page_limit(request.request)
        scope = _scope_filter(conv.list_scope(request))
        extra = [scope]
        for known in request.known_filters:
            if known.WhichOneof("filter_by") == "deployed_by" and known.deployed_by:
                extra.append(Pred("deployed_by", Op.EQ, known.deployed_by))
        q = list_request_to_query(
            request.request, caller=caller_of(ctx) or None, allowed=TASK_FIELDS,
            sort_aliases=TASK_SORT_ALIASES, default_sort=NEWEST_FIRST, extra=and_(*extra),
        )
        page = await self.svc.queries.list_tasks(q)
        totals = ts_pb.ListTasksResponse.ListTasksMetadata(
            total=await self.svc.queries.count_tasks(scope),  # every version in the scope
            filtered_total=await self.svc.queries.count_tasks(q.filter),  # those matching all filters
        )
        return ts_pb.ListTasksResponse(
            tasks=[conv.task_pb(t) for t in page.items], token=page.next_cursor or "", metadata=totals
        )

    async def list_versions(self, request: ts_pb.ListVersionsRequest, ctx: Ctx) -> ts_pb.ListVersionsResponse:
        validate(request)
        page_limit(request.request)
        q = list_request_to_query(
            request.request, caller=caller_of(ctx) or None, allowed=TASK_FIELDS,
            sort_aliases=TASK_SORT_ALIASES, default_sort=NEWEST_FIRST,
            extra=_scope_filter(conv.versions_scope(request.task_name)),
        )
        page = await self.svc.queries.list_tasks(q)
        return ts_pb.ListVersionsResponse(
            versions=[conv.version_pb(t) for t in page.items], token=page.next_cursor or ""
        )
