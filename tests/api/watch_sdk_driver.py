"""Drive the real ``flyte`` SDK's ``run.wait()`` / ``Run.watch()`` in a child process.

Usage: ``python watch_sdk_driver.py URL ORG PROJECT DOMAIN (wait|watch) RUN_NAME``. Prints ``READY`` once
the run is fetched, then for ``watch`` one ``PHASE <name>`` line per streamed message, and finally
``DONE <phase> <unix time>`` (or ``ERROR <class> <message>``). Lines are flushed at once.
"""

from __future__ import annotations

import asyncio
import sys
import time

import flyte
import flyte.remote as remote


def say(line: str) -> None:
    print(line, flush=True)


async def watch(run: remote.Run) -> None:
    async for details in run.watch():
        say(f"PHASE {details.phase}")


def main() -> None:
    url, org, project, domain, mode, name = sys.argv[1:7]
    flyte.init(endpoint=url, insecure=True, org=org, project=project, domain=domain)
    try:
        run = remote.Run.get(name)
        say("READY")
        if mode == "wait":
            run.wait(quiet=True)
        else:
            asyncio.run(watch(run))
        say(f"DONE {run.phase} {time.time():.6f}")
    except Exception as exc:
        say(f"ERROR {type(exc).__name__} {exc}")


if __name__ == "__main__":
    main()
