"""Request validation by flyteidl2's own field rules (the ``buf.validate`` annotations of its protos).

A violation becomes InvalidArgument naming the field path, e.g.
``run_id.name: must be at most 30 characters``.
"""

from __future__ import annotations

from typing import Any

import protovalidate

from runtrack.errors import InvalidArgument


def _path(violation: Any) -> str:
    field = getattr(violation.proto, "field", None)
    elements = getattr(field, "elements", None) or ()
    return ".".join(str(getattr(el, "field_name", "")) for el in elements)


def validate(message: Any) -> None:
    """Raise InvalidArgument naming every violated field rule of ``message``."""
    try:
        protovalidate.validate(message)
    except protovalidate.ValidationError as exc:
        problems = []
        for v in exc.violations:
            path = _path(v)
            text = v.proto.message or v.proto.rule_id
            problems.append(f"{path}: {text}" if path else text)
        raise InvalidArgument("; ".join(problems) or "invalid request") from None
