"""Clients for the watch tests: an SSE reader, executor writes over REST, metrics, raw streams."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

ORG, PROJECT, DOMAIN = "acme", "proj", "dev"


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SSE:
    """Reads server-sent events from a streaming httpx response."""

    response: httpx.Response
    last_id: str | None = None
    _lines: AsyncIterator[str] | None = field(default=None, repr=False)

    async def next(self) -> Event:
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        ev = Event()
        seen = False
        async for line in self._lines:
            if line == "":
                if seen and ev.data != "":
                    return ev
                ev, seen = Event(), False
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            seen = True
            if name == "id":
                ev.id = value
                self.last_id = value
            elif name == "event":
                ev.event = value
            elif name == "data":
                ev.data = value if not ev.data else ev.data + "\n" + value
        raise EOFError("stream ended")

    async def until(self, kind: str, within: float = 10) -> list[Event]:
        """Events up to and including the first of ``kind``."""
        out: list[Event] = []
        async with asyncio.timeout(within):
            while True:
                ev = await self.next()
                out.append(ev)
                if ev.event == kind:
                    return out


def run_ref(name: str) -> dict[str, str]:
    return {"org": ORG, "project": PROJECT, "domain": DOMAIN, "name": name}


async def create_run(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/runs", json={**run_ref(name), **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def report(client: httpx.AsyncClient, events: list[tuple[str, str, int | None]]) -> None:
    """POST /api/v1/events: ``(run name, phase, version)`` reports for the root action, attempt 1."""
    body = {
        "events": [
            {"run": run_ref(n), "action": "a0", "attempt": 1, "phase": p, **({"version": v} if v is not None else {})}
            for n, p, v in events
        ]
    }
    r = await client.post("/api/v1/events", json=body)
    assert r.status_code == 200, r.text


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    assert m, f"metric {name} not found"
    return float(m.group(1))


async def wait_metric(client: httpx.AsyncClient, name: str, ok: Callable[[float], bool], within: float = 30) -> float:
    """Poll /metrics until ``ok(value)``; the last value either way."""
    value = await metric(client, name)
    for _ in range(int(within / 0.05)):
        if ok(value):
            break
        await asyncio.sleep(0.05)
        value = await metric(client, name)
    return value


def envelope(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


async def raw_stream(host: str, port: int, path: str, *, body: bytes = b"", method: str = "GET",
                     headers: dict[str, str] | None = None, wait_for: bytes = b"") -> socket.socket:
    """Open a streaming request on a plain socket and read until ``wait_for`` has arrived."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    await loop.sock_sendall(sock, ("\r\n".join(head) + "\r\n\r\n").encode() + body)
    seen = b""
    async with asyncio.timeout(30):
        while wait_for not in seen:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                raise EOFError(seen.decode(errors="replace"))
            seen += chunk
    return sock


def abort(sock: socket.socket) -> None:
    """Close abruptly: a TCP reset, no orderly shutdown."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
