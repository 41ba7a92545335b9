"""Domain errors → Connect errors, through the one table in ``api/errors.py``.

``ErrorInterceptor`` wraps every Connect method (unary and streaming): a domain error becomes its
Connect code, an unexpected exception becomes INTERNAL (never UNKNOWN, on which the flyte SDK would
start an interactive login flow).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext

from runtrack.api.errors import classify

REQ = TypeVar("REQ")
RES = TypeVar("RES")


def to_connect_error(exc: BaseException) -> ConnectError:
    if isinstance(exc, ConnectError):
        return exc
    mapping, message = classify(exc)
    return ConnectError(mapping.connect, message)


class ErrorInterceptor:
    async def intercept_unary(
        self,
        call_next: Callable[[REQ, RequestContext[Any, Any]], Awaitable[RES]],
        request: REQ,
        ctx: RequestContext[Any, Any],
    ) -> RES:
        try:
            return await call_next(request, ctx)
        except Exception as exc:
            raise to_connect_error(exc) from None

    async def intercept_server_stream(
        self,
        call_next: Callable[[REQ, RequestContext[Any, Any]], AsyncIterator[RES]],
        request: REQ,
        ctx: RequestContext[Any, Any],
    ) -> AsyncIterator[RES]:
        try:
            async for item in call_next(request, ctx):
                yield item
        except Exception as exc:
            raise to_connect_error(exc) from None

    async def intercept_client_stream(
        self,
        call_next: Callable[[AsyncIterator[REQ], RequestContext[Any, Any]], Awaitable[RES]],
        request: AsyncIterator[REQ],
        ctx: RequestContext[Any, Any],
    ) -> RES:
        try:
            return await call_next(request, ctx)
        except Exception as exc:
            raise to_connect_error(exc) from None

    async def intercept_bidi_stream(
        self,
        call_next: Callable[[AsyncIterator[REQ], RequestContext[Any, Any]], AsyncIterator[RES]],
        request: AsyncIterator[REQ],
        ctx: RequestContext[Any, Any],
    ) -> AsyncIterator[RES]:
        try:
            async for item in call_next(request, ctx):
                yield item
        except Exception as exc:
            raise to_connect_error(exc) from None


def caller_of(ctx: RequestContext[Any, Any]) -> str:
    """Who is calling: an identity header if a proxy in front sets one, else empty."""
    headers: Any = ctx.request_headers()
    for name in ("x-runtrack-user", "x-user", "x-forwarded-user"):
        value = headers.get(name)
        if value:
            return str(value)
    return ""
