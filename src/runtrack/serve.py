"""Running the server: one process, or several worker processes sharing one port.

With ``workers`` > 1 (PostgreSQL only) the parent process forks that many workers. Each worker is
a whole replica (its own pool, change listener and background jobs; replicas on one database are
designed to run side by side) and binds the port with ``SO_REUSEPORT``, so the kernel spreads new
connections evenly across them. The parent only supervises: it forwards SIGTERM/SIGINT to the
workers, restarts a worker that dies after it had started, and stops everything when a worker
cannot start at all.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

from runtrack.config import Settings

log = logging.getLogger("runtrack.serve")

STARTUP_GRACE_S = 15.0  # a worker exiting 1 sooner than this did not start: stop, do not loop
RESTART_DELAY_S = 1.0


def run_server(settings: Settings, sock: socket.socket | None = None) -> int:
    """Serve in this process until a signal stops it; the exit code (1 when it could not start)."""
    import uvicorn

    from runtrack.api.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
            lifespan="on",
        )
    )
    server.run(sockets=[sock] if sock is not None else None)
    return 0 if server.started else 1


def _address(settings: Settings) -> tuple[socket.AddressFamily, tuple[object, ...]]:
    family, _type, _proto, _name, addr = socket.getaddrinfo(
        settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, addr


def _reuseport_socket(settings: Settings) -> socket.socket:
    family, addr = _address(settings)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(addr)
    return sock


def check_port_free(settings: Settings) -> None:
    """Raise OSError (address in use) now rather than in every worker."""
    family, addr = _address(settings)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(addr)


def run_workers(settings: Settings, workers: int) -> int:
    """Fork ``workers`` server processes and supervise them; the exit code."""
    check_port_free(settings)
    children: dict[int, float] = {}  # pid -> start time
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                code = run_server(settings, _reuseport_socket(settings))
            except BaseException:
                log.exception("worker failed")
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    for _ in range(workers):
        spawn()
    log.info("runtrack workers started", extra={"fields": {"workers": workers, "pids": sorted(children)}})
    failed = False
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code == 1 and time.monotonic() - started < STARTUP_GRACE_S:  # run_server's "did not start"
            log.error("a worker could not start (exit %s); stopping", code)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %s exited (%s); starting another", pid, code)
        time.sleep(RESTART_DELAY_S)
        if not stopping:
            spawn()
    return 1 if failed else 0
