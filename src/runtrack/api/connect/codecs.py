"""Codecs and compression that answer INVALID_ARGUMENT for a malformed request body.

connectrpc's defaults let a decoding error escape as UNKNOWN (on which the flyte SDK starts an
interactive login flow); these wrappers name the problem and use the right code.
"""

from __future__ import annotations

from typing import Any

from connectrpc._codec import ProtoBinaryCodec, ProtoJSONCodec
from connectrpc.code import Code
from connectrpc.compression.gzip import GzipCompression
from connectrpc.errors import ConnectError


class SafeProtoBinaryCodec(ProtoBinaryCodec[Any]):
    def decode(self, data: Any, message: Any) -> Any:
        try:
            return super().decode(data, message)
        except Exception as exc:
            raise ConnectError(
                Code.INVALID_ARGUMENT, f"malformed request: not a valid binary {message.DESCRIPTOR.full_name}"
            ) from exc


class SafeProtoJSONCodec(ProtoJSONCodec[Any]):
    def decode(self, data: Any, message: Any) -> Any:
        try:
            return super().decode(data, message)
        except Exception as exc:
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ConnectError(
                Code.INVALID_ARGUMENT, f"malformed request: not a valid JSON {message.DESCRIPTOR.full_name}: {detail}"
            ) from exc


class SafeGzipCompression(GzipCompression):
    def decompress(self, data: Any) -> Any:
        try:
            return super().decompress(data)
        except Exception as exc:
            raise ConnectError(Code.INVALID_ARGUMENT, "malformed request: body is not valid gzip") from exc


def codecs() -> list[Any]:
    return [SafeProtoBinaryCodec(), SafeProtoJSONCodec()]


def compressions() -> list[Any]:
    return [SafeGzipCompression()]
