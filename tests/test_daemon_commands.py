"""`plan`, `status` and `once` as a user runs them: what they print, their exit codes, and that
they neither need the daemon's lock nor change the state; a damaged store is refused (exit 3)
with a clear message instead of being emptied."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from glimpse_agent.cli import main
from glimpse_agent.clock import SimulatedClock, SystemClock
from glimpse_agent.ledger import Ledger, OwnPost
from glimpse_agent.ledger.storage import StateLock

PERSONA = """\
name = "kuro"
display_name = "kuro"
timezone = "Asia/Tokyo"
active_hours = ["20:00", "03:00"]
posts_per_day = 3
min_post_gap_minutes = 60
topics = ["neon reflections in puddles"]
hashtags = ["#neon"]
[engagement]
likes_per_day = 15
comments_per_day = 2
sessions_per_day = 4
"""
ZONE = ZoneInfo("Asia/Tokyo")
# 21:00 in Tokyo, inside kuro's window, and far from midnight UTC: the posts _fill_ledger puts
# 10 and 20 minutes back fall on the same UTC day whenever the suite runs.
FROZEN_AT = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> Iterator[None]:
    """The commands read the real clock: pin it (ticking, so timeouts still pass)."""
    with freeze_time(FROZEN_AT, tick=True, real_asyncio=True):
        yield


def _dead_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def agent_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "persona.toml").write_text(PERSONA, encoding="utf-8")
    path = tmp_path / "agent.toml"
    path.write_text(
        'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\n'
        f'base_url = "http://127.0.0.1:{_dead_port()}/api/v1"\napi_key = "glm_testkey000001"\n'
        'timeout = 2\n[images]\norder = ["local"]\n[captions]\norder = ["template"]\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return path


def _fill_ledger(state: Path) -> datetime:
    """Two posts, some likes and a plan with a slot an hour ahead, as a running agent leaves."""
    clock = SystemClock()
    now = clock.now()
    with Ledger.open(state, clock=clock) as ledger:
        for i in range(2):
            ledger.add_post(
                OwnPost(
                    f"post-{i}",
                    i,
                    now - timedelta(minutes=10 * (2 - i)),
                    "p",
                    "neon",
                    f"cap {i}",
                    "local",
                    "offline",
                    0.0,
                )
            )
            ledger.record_action("posts", now - timedelta(minutes=10 * (2 - i)), ref=f"post-{i}")
        for _ in range(5):
            ledger.record_action("reactions", now - timedelta(minutes=1))
        local_day = now.astimezone(ZONE).date().isoformat()
        ahead = (now + timedelta(hours=1)).isoformat()
        ledger.save_plan(
            local_day,
            {"slots": [{"slot_id": f"{local_day}/engage/9", "kind": "engage", "at": ahead}]},
        )
        ledger.record_error("imaging", "glif: 503 Service Unavailable", now)
    return now


def test_status_json_reports_quotas_posts_errors_and_next_action(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """`status --json` exits 0 with used/left per bucket, the last posts, the last errors and
    the next planned action — read while the agent holds the state lock."""
    state = agent_toml.parent / "state"
    _fill_ledger(state)
    before = (state / "ledger.json").read_bytes()
    with StateLock(state):  # the daemon is running
        assert main(["status", "-c", str(agent_toml), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["persona"] == "kuro"
    assert view["quotas"]["posts"]["used_today"] == 2
    assert view["quotas"]["posts"]["left"] == 1
    assert view["quotas"]["reactions"]["left"] == 10
    assert [p["post_id"] for p in view["recent_posts"]] == ["post-1", "post-0"]
    assert view["last_errors"][0]["where"] == "imaging"
    assert view["next_action"]["slot_id"].endswith("/engage/9")
    assert (state / "ledger.json").read_bytes() == before  # nothing written


def test_status_prints_a_readable_table(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """Without --json, status prints one line per bucket (used, cap, left), the next action,
    the recent posts and the last errors in words, not Python dicts."""
    _fill_ledger(agent_toml.parent / "state")
    assert main(["status", "-c", str(agent_toml)]) == 0
    out = capsys.readouterr().out
    assert "{'" not in out
    posts = next(line for line in out.splitlines() if line.strip().startswith("posts"))
    assert posts.split()[1:4] == ["2", "3", "1"]
    assert "next planned action: engage at" in out
    assert "imaging: glif: 503 Service Unavailable" in out


def test_status_and_plan_on_a_fresh_state_dir_exit_0(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """Before the first run there is no state yet: status and plan still answer, and create
    nothing."""
    assert main(["status", "-c", str(agent_toml), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recent_posts"] == []
    assert main(["plan", "-c", str(agent_toml)]) == 0
    assert "left now: posts 3" in capsys.readouterr().out
    assert not (agent_toml.parent / "state").exists()


def test_plan_json_is_the_daemons_plan_with_what_is_left(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """`plan --json` exits 0 with slots in local time inside the active window, the day's
    post count capped by what is left, and every bucket's remaining quota."""
    _fill_ledger(agent_toml.parent / "state")
    assert main(["plan", "-c", str(agent_toml), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["timezone"] == "Asia/Tokyo"
    assert plan["left"]["posts"] == 1
    assert plan["days"][-1]["local_day"] == plan["local_day"]
    for slot in plan["slots"]:
        assert slot["local"].endswith("+09:00")
        assert slot["state"] in {"done", "missed", "due now", "planned"}
    today = plan["days"][-1]
    start, end = (datetime.fromisoformat(t) for t in today["active"])
    assert all(start <= datetime.fromisoformat(s["local"]) < end for s in today["slots"])
    # The daemon plans with the quota as it stands when the window opens.
    assert 1 <= sum(1 for s in today["slots"] if s["kind"] == "post") <= 3


def test_a_corrupt_store_without_backup_is_refused_with_exit_3(
    agent_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged ledger.json with no good copy: status and once exit 3, say what to do, and
    leave the file exactly as it was — never an empty store in its place."""
    state = agent_toml.parent / "state"
    state.mkdir(mode=0o700)
    (state / "ledger.json").write_bytes(b'{"meta": {"1": {"sch')
    assert main(["status", "-c", str(agent_toml)]) == 3
    assert main(["once", "-c", str(agent_toml), "--post"]) == 3
    err = capsys.readouterr().err
    assert "unreadable" in err and "Traceback" not in err
    assert (state / "ledger.json").read_bytes() == b'{"meta": {"1": {"sch'


def test_once_exits_1_when_glimpse_cannot_be_reached(
    agent_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`once --post` / `once --engage` exit 1, with a one-line reason, when the action fails."""
    assert main(["once", "-c", str(agent_toml), "--post"]) == 1
    assert main(["once", "-c", str(agent_toml), "--engage"]) == 1
    err = capsys.readouterr().err
    assert "glimpse-agent:" in err and "Traceback" not in err


def test_simulate_against_the_emulators_prints_a_day_by_day_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`simulate -c agent.toml --days 3` runs the real planner and agent on a simulated clock
    against the configured endpoints (``--configured-endpoints``: all on loopback here) and
    prints one line per local day; exit 0."""
    from glimpse_agent.sandbox.stack import SandboxStack
    from glimpse_agent.sandbox.toml_writer import write_agent_toml

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    persona = Path(__file__).resolve().parents[1] / "personas" / "moss.toml"
    with SandboxStack(start=datetime(2026, 4, 6, tzinfo=UTC)) as stack:
        key = asyncio.run(stack.register("moss", "moss@owner.example"))
        config = tmp_path / "agent.toml"
        write_agent_toml(config, stack.agent_toml(persona, tmp_path / "state", api_key=key))
        argv = ["simulate", "-c", str(config), "--days", "3", "--start", "2026-04-06"]
        code = main([*argv, "--configured-endpoints"])
        posts = stack.world.posts_by(stack.world.agent_id_by_name("moss") or "")
    out = capsys.readouterr().out
    assert code == 0, out
    days = re.findall(r"^  (2026-04-0\d)  posts (\d)/(\d)", out, re.M)
    assert [d for d, _, _ in days] == ["2026-04-06", "2026-04-07", "2026-04-08"]
    assert all(done == planned == "1" for _, done, planned in days)
    assert len(posts) == 3


def test_status_and_plan_at_an_instant_read_a_simulated_ledger(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """A ledger written by `simulate`/`sandbox` lies days ahead of the wall clock: without --at
    the commands say so and how to look; with --at they count as of that instant."""
    state = agent_toml.parent / "state"
    later = FROZEN_AT + timedelta(days=3)
    with Ledger.open(state, clock=SimulatedClock(later)) as ledger:
        ledger.add_post(OwnPost("post-9", 9, later, "p", "neon", "cap", "local", "offline", 0.0))
        ledger.record_action("posts", later, ref="post-9")

    assert main(["status", "-c", str(agent_toml), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"add --at {later:%Y-%m-%dT%H:%MZ}" in captured.err
    assert json.loads(captured.out)["quotas"]["posts"]["used_today"] == 0

    at = (later + timedelta(minutes=5)).isoformat()
    assert main(["status", "-c", str(agent_toml), "--json", "--at", at]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    view = json.loads(captured.out)
    assert view["quotas"]["posts"]["used_today"] == 1
    assert view["quotas"]["posts"]["left"] == 2
    assert main(["plan", "-c", str(agent_toml), "--json", "--at", at]) == 0
    assert json.loads(capsys.readouterr().out)["left"]["posts"] == 2


def test_at_must_be_an_iso_time(agent_toml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--at yesterday` is a usage error (exit 2) that shows the expected form."""
    with pytest.raises(SystemExit) as exited:
        main(["status", "-c", str(agent_toml), "--at", "yesterday"])
    assert exited.value.code == 2
    assert "is not an ISO date-time, e.g. 2026-12-08T00:00Z" in capsys.readouterr().err


def test_plan_shows_a_post_waiting_for_its_retry(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """A post slot that failed and waits for its retry is shown as such, with the retry time,
    not as missed."""
    state = agent_toml.parent / "state"
    assert main(["plan", "-c", str(agent_toml), "--json"]) == 0
    slot = next(s for s in json.loads(capsys.readouterr().out)["slots"] if s["kind"] == "post")
    again = FROZEN_AT + timedelta(minutes=20)
    with Ledger.open(state, clock=SimulatedClock(FROZEN_AT)) as ledger:
        ledger.plan_retry(slot["slot"], again)

    assert main(["plan", "-c", str(agent_toml), "--json"]) == 0
    shown = next(
        s for s in json.loads(capsys.readouterr().out)["slots"] if s["slot"] == slot["slot"]
    )
    assert shown["state"] == "retry" and shown["retry_at"] == again.isoformat()
    assert main(["plan", "-c", str(agent_toml)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if slot["slot"] in ln)
    assert f"tried again at {again.astimezone(ZONE):%H:%M}" in line


def test_plan_and_status_show_a_post_made_up_after_a_miss(
    agent_toml: Path, capsys: pytest.CaptureFixture[str], frozen: None
) -> None:
    """A post slot missed while the agent was down and made up later is shown as made up,
    with its new time, by `plan` (state and line) and by `status` (the next action)."""
    state = agent_toml.parent / "state"
    assert main(["plan", "-c", str(agent_toml), "--json"]) == 0
    slot = next(s for s in json.loads(capsys.readouterr().out)["slots"] if s["kind"] == "post")
    again = FROZEN_AT + timedelta(minutes=7)
    day_key = slot["slot"].split("/")[0]
    with Ledger.open(state, clock=SimulatedClock(FROZEN_AT)) as ledger:
        # The daemon saved the day's plan, and made the slot up after a restart.
        ledger.save_plan(
            day_key, {"slots": [{"slot_id": slot["slot"], "kind": "post", "at": slot["utc"]}]}
        )
        ledger.plan_retry(slot["slot"], again, why="missed")

    assert main(["plan", "-c", str(agent_toml), "--json"]) == 0
    shown = next(
        s for s in json.loads(capsys.readouterr().out)["slots"] if s["slot"] == slot["slot"]
    )
    assert shown["state"] == "made up" and shown["retry_at"] == again.isoformat()
    assert main(["plan", "-c", str(agent_toml)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if slot["slot"] in ln)
    assert f"missed; made up at {again.astimezone(ZONE):%H:%M}" in line
    assert main(["status", "-c", str(agent_toml), "--json"]) == 0
    nxt = json.loads(capsys.readouterr().out)["next_action"]
    assert (nxt["slot_id"], nxt["at"], nxt["moved"]) == (slot["slot"], again.isoformat(), "made up")
    assert main(["status", "-c", str(agent_toml)]) == 0
    assert f"({slot['slot']}) [made up]" in capsys.readouterr().out
