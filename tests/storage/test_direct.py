"""Statements run on the asyncpg connection directly: the same values, errors and pool behaviour as
through SQLAlchemy."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from runtrack.domain.models import NewRun, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.reports import ActionReport
from runtrack.errors import Unavailable
from runtrack.service.container import Services
from runtrack.storage.direct import DirectStatement
from runtrack.storage.tables import attempts

pytestmark = pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
RID = RunId("acme", "proj", "dev", "r-direct")


async def test_values_come_back_as_through_sqlalchemy(services: Services) -> None:
    ex = services.executor
    await ex.create_run(NewRun(id=RID, created_by="alice"))
    await ex.record_events([ActionReport(RID, "a0", 1, Phase.RUNNING, log_info={"uri": "s3://x", "n": [1, 2]})])
    stmt = sa.select(attempts.c.id, attempts.c.start_time, attempts.c.log_info, attempts.c.outputs).where(
        attempts.c.id == sa.bindparam("pk")
    )
    async with services.db.autocommit() as conn:
        pk = (await conn.execute(sa.select(attempts.c.id))).scalar_one()
        via_sa = (await conn.execute(stmt, {"pk": pk})).one()
        direct = await DirectStatement(stmt, conn.dialect).fetchrow(conn, {"pk": pk})
        missing = await DirectStatement(stmt, conn.dialect).fetchrow(conn, {"pk": -1})
    assert tuple(direct) == tuple(via_sa) and direct.log_info == {"uri": "s3://x", "n": [1, 2]}
    assert direct.start_time.tzinfo is not None and missing is None


async def test_errors_carry_the_sqlstate(services: Services) -> None:
    async with services.db.autocommit() as conn:
        with pytest.raises(sa.exc.DBAPIError) as err:
            stmt = sa.select(sa.cast(sa.bindparam("text", type_=sa.String), sa.Integer))
            await DirectStatement(stmt, conn.dialect).fetchrow(conn, {"text": "twelve"})
    assert getattr(err.value.orig, "sqlstate", None) == "22P02"  # invalid_text_representation


async def test_a_lost_connection_is_unavailable_and_leaves_the_pool(services: Services) -> None:
    stmt = sa.select(sa.func.pg_backend_pid())
    with pytest.raises(Unavailable):
        async with services.db.autocommit() as conn:
            pid = (await DirectStatement(stmt, conn.dialect).fetchrow(conn, {}))[0]
            async with services.db.autocommit() as killer:
                await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await DirectStatement(stmt, conn.dialect).fetchrow(conn, {})
    async with services.db.autocommit() as conn:  # the pool hands out a live connection again
        assert (await DirectStatement(stmt, conn.dialect).fetchrow(conn, {}))[0] != pid
