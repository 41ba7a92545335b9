"""flyteidl2 ``InternalRunService`` (executors report here) and ``RunLogsService.TailLogs``.

The bidirectional streaming variants (``RecordActionStream``, ``UpdateActionStatusStream``,
``RecordActionEventStream``) are served too: each request message is handled as its unary
counterpart and answered in order with the request's ``nonce``. They need a client that can send
and receive at once, which the Connect protocol only offers over HTTP/2; the bundled server
(uvicorn) speaks HTTP/1.1, so there they work half-duplex (the client sends its whole stream,
then reads the answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from fastapi import FastAPI
from flyteidl2.workflow import internal_run_service_pb2 as irs
from flyteidl2.workflow import run_logs_service_pb2 as rls
from flyteidl2.workflow.internal_run_service_connect import InternalRunServiceASGIApplication
from flyteidl2.workflow.run_logs_service_connect import RunLogsServiceASGIApplication

from runtrack.api.connect import executor_convert as cv
from runtrack.api.connect.errors import to_connect_error
from runtrack.api.connect.mount import mount_service
from runtrack.domain.reports import ReportResult
from runtrack.errors import InvalidArgument
from runtrack.service.container import Services
from runtrack.service.logs import MAX_PAGE

ServicesOf = Callable[[], Services]


class InternalRunServiceImpl:
    def __init__(self, services: ServicesOf) -> None:
        self._services = services

    async def record_action(
        self, request: irs.RecordActionRequest, ctx: RequestContext[Any, Any]
    ) -> irs.RecordActionResponse:
        created = await self._services().executor.record_action(cv.new_action_of(request))
        return irs.RecordActionResponse(
            action_id=request.action_id, status=cv.ok_status("recorded" if created else "already recorded")
        )

    async def update_action_status(
        self, request: irs.UpdateActionStatusRequest, ctx: RequestContext[Any, Any]
    ) -> irs.UpdateActionStatusResponse:
        result = await self._services().executor.update_status(cv.report_of_status(request))
        return irs.UpdateActionStatusResponse(action_id=request.action_id, status=cv.result_status(result))

    async def record_action_events(
        self, request: irs.RecordActionEventsRequest, ctx: RequestContext[Any, Any]
    ) -> irs.RecordActionEventsResponse:
        reports = [cv.report_of_event(ev, f"events[{i}]") for i, ev in enumerate(request.events)]
        results = await self._services().executor.record_events(reports)
        return irs.RecordActionEventsResponse(status=cv.ok_status(_summary(results)))

    async def record_action_stream(
        self, request: AsyncIterator[irs.RecordActionStreamRequest], ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[irs.RecordActionStreamResponse]:
        async for msg in request:
            yield irs.RecordActionStreamResponse(response=await self.record_action(msg.request, ctx))

    async def update_action_status_stream(
        self, request: AsyncIterator[irs.UpdateActionStatusStreamRequest], ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[irs.UpdateActionStatusStreamResponse]:
        async for msg in request:
            try:
                response = await self.update_action_status(msg.request, ctx)
            except Exception as exc:  # one bad status does not end the stream: answer it in place
                err = to_connect_error(exc)
                response = irs.UpdateActionStatusResponse(
                    action_id=msg.request.action_id, status=cv.error_status(_code(err), err.message)
                )
            yield irs.UpdateActionStatusStreamResponse(response=response, nonce=msg.nonce)

    async def record_action_event_stream(
        self, request: AsyncIterator[irs.RecordActionEventStreamRequest], ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[irs.RecordActionEventStreamResponse]:
        async for msg in request:
            ev = msg.request.event
            try:
                [result] = await self._services().executor.record_events([cv.report_of_event(ev)])
                status = cv.result_status(result)
            except Exception as exc:
                err = to_connect_error(exc)
                status = cv.error_status(_code(err), err.message)
            yield irs.RecordActionEventStreamResponse(
                response=irs.RecordActionEventResponse(action_id=ev.id, status=status), nonce=msg.nonce
            )


class RunLogsServiceImpl:
    def __init__(self, services: ServicesOf) -> None:
        self._services = services

    async def tail_logs(
        self, request: rls.TailLogsRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[rls.TailLogsResponse]:
        """Every line of the attempt so far, then new lines as they arrive, until the attempt ends."""
        run, name = cv.run_id_of(request.action_id)
        attempt = request.attempt or 1
        if attempt < 1:
            raise InvalidArgument(f"attempt must be 1 or more, got {request.attempt}")
        logs = self._services().executor.logs
        after = 0
        while True:
            page = await logs.read(run, name, attempt, after=after, limit=MAX_PAGE)
            if page.lines:
                yield cv.log_response(list(page.lines))
            after = page.next_after
            if page.terminal:
                return
            if not page.lines:
                await asyncio.sleep(0.2)


def _code(err: ConnectError) -> int:
    """The numeric gRPC code (google.rpc.Status.code) of a Connect error."""
    return _GRPC_CODES.get(err.code.name, 13)


_GRPC_CODES = {
    "CANCELED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}


def _summary(results: list[ReportResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no events"


def mount_executor_services(app: FastAPI) -> None:
    """Mount InternalRunService and RunLogsService (their services come from the running app)."""

    def services() -> Services:
        svc: Services = app.state.services
        return svc

    mount_service(app, InternalRunServiceASGIApplication, InternalRunServiceImpl(services))
    mount_service(app, RunLogsServiceASGIApplication, RunLogsServiceImpl(services))
