"""A server shared by the tests of one module (one per database), for the executor API suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_db
from tests.support import ServerProcess, database_url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_db(request.param)
    tmp = tmp_path_factory.mktemp(f"srv-{request.param}")
    with database_url(request.param, tmp) as url:
        proc = ServerProcess(url, log_path=tmp / "server.log").wait_ready()
        try:
            yield proc
        finally:
            proc.stop()
