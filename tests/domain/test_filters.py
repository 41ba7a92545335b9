"""The filter AST: validation against the allowlist, coercion, `me`, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from runtrack.domain.cursor import decode_cursor, encode_cursor
from runtrack.domain.filter_eval import matches
from runtrack.domain.filters import NOTHING, And, Not, Op, Or, Pred, filter_hash, prepare, resolve_me, validate
from runtrack.domain.models import Run, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.query import Sort, parse_sort
from runtrack.errors import InvalidArgument

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_values_are_coerced_to_the_field_kind() -> None:
    assert validate(Pred("phase", Op.EQ, "5")) == Pred("phase", Op.EQ, Phase.SUCCEEDED)
    assert validate(Pred("status", Op.NE, "failed")) == Pred("phase", Op.NOT_IN, (Phase.FAILED, Phase.TIMED_OUT))
    assert validate(Pred("created_at", Op.GT, "2026-01-01T01:00:00+01:00")) == Pred("created_at", Op.GT, T)
    assert validate(Pred("duration_ms", Op.IN, ["1", 2])) == Pred("duration_ms", Op.IN, (1, 2))
    assert validate(Pred("labels.team", Op.EXISTS, "ignored")) == Pred("labels.team", Op.EXISTS, None)


@pytest.mark.parametrize(
    ("node", "needle"),
    [
        (Pred("owner", Op.EQ, "x"), "owner"),
        (Pred("labels.", Op.EQ, "x"), "label key"),
        (Pred("phase", Op.EQ, "bogus"), "bogus"),
        (Pred("phase", Op.LT, "5"), "operator lt"),
        (Pred("name", Op.GT, "x"), "operator gt"),
        (Pred("created_at", Op.GT, "2026-01-01T00:00:00"), "timezone"),
        (Pred("created_at", Op.GT, datetime(2026, 1, 1)), "timezone"),
        (Pred("created_at", Op.IN, ("x",)), "operator in"),
        (Pred("duration_ms", Op.EQ, "1.5"), "integer"),
        (Pred("name", Op.IN, ()), "non-empty"),
        (Pred("name", Op.EQ, 3), "string"),
        (Pred("name", Op.CONTAINS, ""), "non-empty"),
        (And((Pred("name", Op.EQ, "x"), Not(Pred("zzz", Op.EXISTS)))), "zzz"),
    ],
)
def test_invalid_filters_name_the_bad_part(node: Pred, needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate(node)
    assert needle in info.value.message


def test_me_resolves_to_the_caller_or_matches_nothing() -> None:
    me = Pred("created_by", Op.EQ, "me")
    assert resolve_me(me, "alice") == Pred("created_by", Op.EQ, "alice")
    assert resolve_me(me, None) == NOTHING
    assert resolve_me(Not(me), None) == Not(NOTHING)
    assert resolve_me(Pred("created_by", Op.IN, ("me", "bob")), None) == Pred("created_by", Op.IN, ("bob",))
    assert resolve_me(Pred("created_by", Op.IN, ("me", "bob")), "al") == Pred("created_by", Op.IN, ("bob", "al"))
    assert resolve_me(Pred("name", Op.EQ, "me"), None) == Pred("name", Op.EQ, "me")
    run = Run(id=RunId("o", "p", "d", "n"), phase=Phase.RUNNING, created_at=T, updated_at=T, created_by="alice")
    assert not matches(prepare(me, None), run) and matches(prepare(me, "alice"), run)


def test_evaluator_semantics() -> None:
    run = Run(id=RunId("o", "p", "d", "Name-1"), phase=Phase.FAILED, created_at=T, updated_at=T,
              labels={"team": "", "env": "prod"})
    assert matches(prepare(Pred("labels.team", Op.EXISTS), None), run)
    assert not matches(prepare(Pred("labels.nope", Op.EQ, ""), None), run)
    assert matches(prepare(Pred("labels.nope", Op.NE, "x"), None), run)
    assert matches(prepare(Pred("ended_at", Op.NE, T.isoformat()), None), run)
    assert not matches(prepare(Pred("ended_at", Op.LT, T.isoformat()), None), run)
    assert matches(prepare(Pred("name", Op.ICONTAINS, "name"), None), run)
    assert not matches(prepare(Pred("name", Op.CONTAINS, "name"), None), run)
    assert matches(prepare(Or((Pred("status", Op.EQ, "failed"), NOTHING)), None), run)
    assert matches(And(()), run) and not matches(NOTHING, run)


def test_cursor_round_trip_and_rejections() -> None:
    h = filter_hash(Pred("phase", Op.EQ, Phase.FAILED), "created_at", True)
    assert h != filter_hash(Pred("phase", Op.EQ, Phase.RUNNING), "created_at", True)
    assert h != filter_hash(Pred("phase", Op.EQ, Phase.FAILED), "created_at", False)
    t = T + timedelta(microseconds=7)
    for value in (t, 42, "abc", None):
        c = decode_cursor(encode_cursor(value, 9, h), h)
        assert (c.value, c.pk) == (value, 9)
    with pytest.raises(InvalidArgument, match="different filter"):
        decode_cursor(encode_cursor(1, 9, h), "other")
    for bad in ("", "%%%", "e30", "x" * 2000, encode_cursor(1, 9, h)[:-2]):
        with pytest.raises(InvalidArgument, match="cursor"):
            decode_cursor(bad, h)
    assert decode_cursor(encode_cursor(t.astimezone(timezone(timedelta(hours=2))), 1, h), h).value == t


def test_sort_parsing() -> None:
    assert parse_sort(None) == Sort("created_at", True)
    assert parse_sort("-duration") == Sort("duration_ms", True)
    assert parse_sort("name") == Sort("name", False)
    with pytest.raises(InvalidArgument, match="owner"):
        parse_sort("-owner")
