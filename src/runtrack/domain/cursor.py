"""Opaque page cursors: keyset on the sort key plus the row's unique ``pk``.

A cursor is urlsafe base64 of a small JSON object: the sort value of the last row of the page
(``v``; None for a NULL, which sorts last), its ``pk`` (``k``), and the hash of the filter and sort
it was made for (``h``). Reusing a cursor with another filter or sort, or passing anything that
is not a cursor, is InvalidArgument.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runtrack.errors import InvalidArgument

_MAX_LEN = 1024


@dataclass(frozen=True, slots=True)
class Cursor:
    value: Any  # the sort key of the last row (datetime, int, str) or None
    pk: int
    filter_hash: str


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"t": v.isoformat()}
    if isinstance(v, bool) or not isinstance(v, int | str | None):
        return str(v)
    return int(v) if isinstance(v, int) else v


def encode_cursor(value: Any, pk: int, filter_hash: str) -> str:
    blob = json.dumps({"v": _plain(value), "k": int(pk), "h": filter_hash}, separators=(",", ":"))
    return base64.urlsafe_b64encode(blob.encode()).decode().rstrip("=")


def decode_cursor(token: str, expected_hash: str) -> Cursor:
    """Parse a cursor made for the filter+sort whose hash is ``expected_hash``."""
    bad = InvalidArgument("cursor: not a valid page cursor (pass back the next_cursor of a previous page)")
    if not token or len(token) > _MAX_LEN:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or set(data) != {"v", "k", "h"}:
        raise bad
    pk, h, v = data["k"], data["h"], data["v"]
    if not isinstance(pk, int) or isinstance(pk, bool) or not isinstance(h, str):
        raise bad
    if isinstance(v, dict):
        if set(v) != {"t"} or not isinstance(v["t"], str):
            raise bad
        try:
            v = datetime.fromisoformat(v["t"])
        except ValueError:
            raise bad from None
        if v.tzinfo is None:
            raise bad
    elif v is not None and (isinstance(v, bool) or not isinstance(v, int | str)):
        raise bad
    if h != expected_hash:
        raise InvalidArgument("cursor: it was made for a different filter or sort; start again without a cursor")
    return Cursor(value=v, pk=pk, filter_hash=h)
