"""Drive the real ``flyte`` SDK against a server, in a child process (its global state stays there).

Usage: ``python sdk_driver.py URL ORG PROJECT DOMAIN '<json list of operations>'``; prints one JSON
list with one result per operation: ``{"ok": ...}`` or ``{"error": class name, "code": connect code}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import flyte
import flyte.remote as remote
from google.protobuf.json_format import MessageToDict


def _obj(x: Any) -> dict[str, Any]:
    pb = getattr(x, "pb2", None)
    out: dict[str, Any] = {"name": getattr(x, "name", None), "pb": MessageToDict(pb) if pb is not None else None}
    phase = getattr(x, "phase", None)
    if phase is not None:
        out["phase"] = getattr(phase, "value", str(phase))
    return out


def _run(op: dict[str, Any]) -> Any:
    kind, kw = op["op"], dict(op.get("kwargs", {}))
    for key in ("in_phase", "sort_by"):
        if key in kw:
            kw[key] = tuple(kw[key])
    if kind == "runs":
        return [_obj(r) for r in remote.Run.listall(**kw)]
    if kind == "run":
        return _obj(remote.Run.get(kw["name"]))
    if kind == "run_details":
        return _obj(remote.RunDetails.get(name=kw["name"]))
    if kind == "actions":
        return [_obj(a) for a in remote.Action.listall(**kw)]
    if kind == "action":
        return _obj(remote.Action.get(**kw))
    if kind == "abort":
        remote.Run.get(kw["name"]).abort(reason=kw["reason"])
        return None
    if kind == "tasks":
        return [_obj(t) for t in remote.Task.listall(**kw)]
    raise ValueError(f"unknown op {kind}")


def main() -> None:
    url, org, project, domain, ops = sys.argv[1:6]
    flyte.init(endpoint=url, insecure=True, org=org, project=project, domain=domain)
    results = []
    for op in json.loads(ops):
        try:
            results.append({"ok": _run(op)})
        except Exception as exc:
            code = getattr(exc, "code", None)
            results.append({"error": type(exc).__name__, "code": getattr(code, "name", str(code)), "msg": str(exc)})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
