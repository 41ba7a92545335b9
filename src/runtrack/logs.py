"""Structured logging: one JSON object per line (or plain text), configured once at start."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# logger.level in the config file follows the original service: 0 panic .. 5 debug.
_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.ERROR, 3: logging.WARNING, 4: logging.INFO}


class JsonFormatter(logging.Formatter):
    def __init__(self, show_source: bool) -> None:
        super().__init__()
        self.show_source = show_source

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.show_source:
            out["source"] = f"{record.pathname}:{record.lineno}"
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: int, *, show_source: bool = False, fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(show_source))
    else:
        src = " %(pathname)s:%(lineno)d" if show_source else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{src}: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.DEBUG))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
