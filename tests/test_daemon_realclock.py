"""`status` and `plan` read the real clock (``SystemClock``): what they show at a given wall
time, with freezegun moving that clock. Daily caps reset at midnight UTC while the sliding hour
keeps counting, and a persona east of UTC plans its own local date, not the UTC one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from glimpse_agent.cli import main
from glimpse_agent.clock import SystemClock
from glimpse_agent.ledger import Ledger, OwnPost

PERSONA = """\
name = "kuro"
display_name = "kuro"
timezone = "Asia/Tokyo"
active_hours = ["20:00", "03:00"]
posts_per_day = 6
min_post_gap_minutes = 30
topics = ["neon reflections in puddles"]
hashtags = ["#neon"]
[engagement]
likes_per_day = 15
comments_per_day = 2
sessions_per_day = 4
"""
# The last minute of a UTC day, and the first minutes of the next.
BEFORE_MIDNIGHT = "2026-03-04T23:59:00+00:00"
AFTER_MIDNIGHT = "2026-03-05T00:01:00+00:00"


@pytest.fixture
def agent_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Tokyo persona allowed the platform's 6 posts a day; nothing is ever contacted."""
    (tmp_path / "persona.toml").write_text(PERSONA, encoding="utf-8")
    path = tmp_path / "agent.toml"
    path.write_text(
        'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\n'
        'base_url = "http://127.0.0.1:9/api/v1"\napi_key = "glm_testkey000001"\n'
        'timeout = 2\n[images]\norder = ["local"]\n[captions]\norder = ["template"]\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return path


def _posts_tonight(state: Path) -> None:
    """Six posts between 23:05 and 23:55 UTC, as the daemon records them (with the real clock,
    frozen at the end of that UTC day)."""
    first = datetime(2026, 3, 4, 23, 5, tzinfo=UTC)
    with Ledger.open(state, clock=SystemClock()) as ledger:
        for i in range(6):
            at = first + timedelta(minutes=10 * i)
            ledger.add_post(
                OwnPost(f"post-{i}", i, at, "p", "neon", f"cap {i}", "local", "offline", 0.0)
            )
            ledger.record_action("posts", at, ref=f"post-{i}")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_the_real_clock_is_the_one_frozen() -> None:
    """The daemon's clock reads the wall clock at each call: under freezegun it answers the
    frozen instant, aware and in UTC, and follows when time is moved."""
    with freeze_time(BEFORE_MIDNIGHT, real_asyncio=True) as frozen:
        clock = SystemClock()
        assert clock.now() == datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
        assert clock.now().utcoffset() == timedelta(0)
        frozen.move_to(AFTER_MIDNIGHT)
        assert clock.now() == datetime(2026, 3, 5, 0, 1, tzinfo=UTC)


def test_status_at_2359_utc_counts_todays_posts_against_the_daily_cap(
    agent_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 23:59 UTC, after six posts that evening, `status --json` shows the posts bucket used
    6 of 6 today, nothing left, and the next post free at midnight UTC."""
    with freeze_time(BEFORE_MIDNIGHT, real_asyncio=True):
        _posts_tonight(agent_toml.parent / "state")
        view = _json(capsys, ["status", "-c", str(agent_toml), "--json"])
        plan = _json(capsys, ["plan", "-c", str(agent_toml), "--json"])
    posts = view["quotas"]["posts"]
    assert (posts["used_today"], posts["daily_cap"], posts["left"]) == (6, 6, 0)
    assert posts["next_free"] == "2026-03-05T00:00:00.000000Z"
    assert view["at"] == "2026-03-04T23:59:00.000000Z"
    assert plan["left"]["posts"] == 0


def test_status_one_minute_after_midnight_utc_resets_the_day_but_not_the_hour(
    agent_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 00:01 UTC the daily post count starts again from 0, but the six posts of the last
    hour still count against Glimpse's 10 an hour: 4 left, not 6."""
    with freeze_time(BEFORE_MIDNIGHT, real_asyncio=True) as frozen:
        _posts_tonight(agent_toml.parent / "state")
        frozen.move_to(AFTER_MIDNIGHT)
        view = _json(capsys, ["status", "-c", str(agent_toml), "--json"])
        plan = _json(capsys, ["plan", "-c", str(agent_toml), "--json"])
    posts = view["quotas"]["posts"]
    assert posts["used_today"] == 0
    assert posts["left"] == 4
    assert plan["left"]["posts"] == 4
    # An hour after the last post the hourly window is empty too: the whole daily cap is back.
    with freeze_time("2026-03-05T00:56:00+00:00", real_asyncio=True):
        view = _json(capsys, ["status", "-c", str(agent_toml), "--json"])
    assert view["quotas"]["posts"]["left"] == 6


def test_plan_in_tokyo_shows_its_own_local_date_not_the_utc_one(
    agent_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 20:00 UTC on 4 March it is 05:00 on 5 March in Tokyo: `plan` shows 5 March, with the
    window opening at 20:00 Tokyo time that evening and every slot inside it."""
    with freeze_time("2026-03-04T20:00:00+00:00", real_asyncio=True):
        plan = _json(capsys, ["plan", "-c", str(agent_toml), "--json"])
        assert main(["plan", "-c", str(agent_toml)]) == 0
        text = capsys.readouterr().out
    assert plan["local_day"] == "2026-03-05"
    assert [d["local_day"] for d in plan["days"]] == ["2026-03-05"]
    assert plan["active"] == ["2026-03-05T20:00:00+09:00", "2026-03-06T03:00:00+09:00"]
    assert plan["slots"] and all(s["state"] == "planned" for s in plan["slots"])
    assert all(s["slot"].startswith("2026-03-05/") for s in plan["slots"])
    assert "now 2026-03-05 05:00 JST (20:00 UTC)" in text


def test_plan_after_local_midnight_in_tokyo_still_shows_last_nights_window(
    agent_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 01:00 in Tokyo (16:00 UTC the day before) the 20:00-03:00 window that opened on the
    local evening before is still running: `plan` shows that local day and today's."""
    with freeze_time("2026-03-04T16:00:00+00:00", real_asyncio=True):
        plan = _json(capsys, ["plan", "-c", str(agent_toml), "--json"])
    assert [d["local_day"] for d in plan["days"]] == ["2026-03-04", "2026-03-05"]
    assert plan["local_day"] == "2026-03-05"
    last_night = plan["days"][0]
    assert last_night["active"] == ["2026-03-04T20:00:00+09:00", "2026-03-05T03:00:00+09:00"]
