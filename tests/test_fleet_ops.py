"""A fleet's metrics and health: one `/healthz` + `/metrics` listener for every persona (several
files naming the same `[ops] listen` share it, never each binding it), each family labelled
with the persona, a paused persona marked paused, feeds added and removed on reload; and
`glimpse-agent fleet health` (exit 0/1, the verdict's line, one line per persona) with the
fleet's rules: unhealthy when its loop is gone or stuck, or when every persona not paused is."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fleetkit import wait_for as _wait
from fleetkit import write_member
from glimpse_agent.clock import SystemClock
from glimpse_agent.errors import ConfigError
from glimpse_agent.health import Verdict
from glimpse_agent.ops.fleet_health import MemberVerdict, judge_fleet
from glimpse_agent.run.fleet import Fleet, listen_for
from glimpse_agent.run.fleet_configs import FleetSource, load_all
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=12, population=6)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _by_persona(text: str) -> dict[str, list[Sample]]:
    """Every sample of the exposition, parsed by prometheus_client, grouped by persona."""
    grouped: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            grouped.setdefault(sample.labels["persona"], []).append(sample)
    return grouped


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


# --------------------------------------------------------------------------- /metrics


async def test_fleet_metrics_label_every_persona_and_mark_the_paused_one(
    tmp_path: Path, world: tuple[GlimpseWorld, str], running: Any
) -> None:
    """Three files all naming the same `[ops] listen`: one listener serves them (no bind
    error). After each posted, /metrics (parsed by prometheus_client) has every persona's
    families: its post, its posts quota, its Glimpse requests; the paused one keeps its
    counters and says `glimpse_agent_paused 1` and state "paused". A reload that removes one
    file and adds another removes and adds its series."""
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    port = _free_port()
    ops = f'[ops]\nlisten = "127.0.0.1:{port}"\n'
    agents = {name: glimpse.create_agent(name) for name in ("alpha", "bravo", "charlie", "delta")}
    for name in ("alpha", "bravo", "charlie"):
        write_member(
            tmp_path,
            name,
            base_url=base_url,
            key=agents[name][1],
            fleet_dir=fleet_dir,
            extra_daemon=ops,
        )
    fleet = Fleet(
        FleetSource(directory=fleet_dir), control=tmp_path / "ctl.sock", handle_signals=False
    )
    running(fleet)
    url = f"http://127.0.0.1:{port}"

    async def scrape() -> dict[str, list[Sample]]:
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.get("/metrics")
        assert answer.status_code == 200
        return _by_persona(answer.text)

    async def each_posted() -> bool:
        try:
            samples = await scrape()
        except httpx.TransportError:
            return False  # not listening yet
        return all(
            _value(samples.get(name, []), "glimpse_agent_actions_total", kind="post", outcome="ok")
            == 1
            for name in ("alpha", "bravo", "charlie")
        )

    assert await _wait(each_posted, 60), await fleet.status()
    for name in ("alpha", "bravo", "charlie"):
        assert len(glimpse.posts_by(agents[name][0])) == 1
    await fleet.pause(fleet.member("charlie"))

    samples = await scrape()
    assert set(samples) == {"alpha", "bravo", "charlie"}
    for name, own in samples.items():
        assert _value(own, "glimpse_agent_info", persona=name) == 1
        # Counted by its own runtime: one post each, never another persona's.
        assert _value(own, "glimpse_agent_actions_total", kind="post", outcome="ok") == 1
        # Its own ledger (charlie's read from its file while paused, its lock being free).
        assert _value(own, "glimpse_agent_quota_used_today", bucket="posts") == 1
        requests = _value(own, "glimpse_agent_glimpse_requests_total", outcome="ok")
        assert requests is not None and requests >= 3
        assert _value(own, "glimpse_agent_healthy") == 1
    for name in ("alpha", "bravo"):
        assert _value(samples[name], "glimpse_agent_paused") == 0
        assert _value(samples[name], "glimpse_agent_state", state="running") == 1
    assert _value(samples["charlie"], "glimpse_agent_paused") == 1
    assert _value(samples["charlie"], "glimpse_agent_state", state="paused") == 1
    assert _value(samples["charlie"], "glimpse_agent_state", state="running") is None

    async with httpx.AsyncClient(base_url=url) as http:
        health = await http.get("/healthz")
    assert health.status_code == 200
    doc = health.json()
    assert doc["healthy"] is True
    rows = {row["persona"]: row for row in doc["personas"]}
    assert rows["charlie"]["state"] == "paused" and rows["charlie"]["healthy"] is True
    assert rows["alpha"]["state"] == "running"
    assert doc["counts"] == {"healthy": 2, "unhealthy": 0, "paused": 1}

    # Reload: bravo's file removed, delta's added: its series go, delta's come.
    (fleet_dir / "bravo.toml").unlink()
    write_member(
        tmp_path,
        "delta",
        base_url=base_url,
        key=agents["delta"][1],
        fleet_dir=fleet_dir,
        extra_daemon=ops,
    )
    result = await fleet.reload()
    assert result["added"] == ["delta"] and result["removed"] == ["bravo"]
    samples = await scrape()
    assert set(samples) == {"alpha", "charlie", "delta"}
    assert _value(samples["delta"], "glimpse_agent_paused") == 0


async def test_a_listen_address_in_use_is_a_config_error_naming_the_flag(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    """The address is taken before any persona starts: exit 2 (ConfigError) naming --listen,
    nothing posted, the control socket removed."""
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    solo_id, solo_key = glimpse.create_agent("solo")
    write_member(tmp_path, "solo", base_url=base_url, key=solo_key, fleet_dir=fleet_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet = Fleet(
            FleetSource(directory=fleet_dir),
            control=tmp_path / "ctl.sock",
            handle_signals=False,
            listen=f"127.0.0.1:{port}",
        )
        with pytest.raises(ConfigError) as caught:
            await fleet.run()
    assert "--listen" in str(caught.value.problems[0])
    assert not (tmp_path / "ctl.sock").exists(), "the control socket is cleaned up"
    assert glimpse.posts_by(solo_id) == []


def test_where_the_fleet_listens(tmp_path: Path) -> None:
    """--listen wins; without it the first file naming `[ops] listen` gives the address, files
    naming the same address share it, a file naming another one is reported as ignored."""
    fleet_dir = tmp_path / "fleet.d"

    def member(name: str, listen: str | None) -> None:
        write_member(
            tmp_path,
            name,
            base_url="http://127.0.0.1:9/api/v1",
            key=f"glm_{name[0] * 40}",
            fleet_dir=fleet_dir,
            extra_daemon=f'[ops]\nlisten = "{listen}"\n' if listen else "",
        )

    def choice(flag: str | None = None) -> Any:
        return listen_for(flag, load_all(FleetSource(directory=fleet_dir).paths()))

    member("aa", None)
    member("bb", "127.0.0.1:9464")
    member("cc", "127.0.0.1:9464")
    assert choice() == (("127.0.0.1", 9464), str(fleet_dir / "bb.toml"), "ops.listen", [])
    member("dd", "127.0.0.1:9999")
    assert choice() == (
        ("127.0.0.1", 9464),
        str(fleet_dir / "bb.toml"),
        "ops.listen",
        [str(fleet_dir / "dd.toml")],
    )
    flag = choice("0.0.0.0:9100")
    assert flag[:3] == (("0.0.0.0", 9100), "command line", "--listen")
    assert len(flag[3]) == 3  # every file naming an address is overridden
    for name in ("bb", "cc", "dd"):
        (fleet_dir / f"{name}.toml").unlink()
    assert choice() is None


# --------------------------------------------------------------------------- health


def _fleet_health(control: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "glimpse_agent",
            "fleet",
            "health",
            "--control",
            str(control),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_fleet_health_names_the_unhealthy_persona_and_turns_when_none_is_left(
    tmp_path: Path, world: tuple[GlimpseWorld, str], running: Any
) -> None:
    """One persona healthy, one whose Glimpse is unreachable past its (small) patience, one
    paused: the fleet is healthy (exit 0) and names the unhealthy one, one line per persona,
    the same in /healthz. Pause the healthy one: every persona not paused is unhealthy, exit 1
    and 503. The fleet gone: exit 1."""
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    steady_id, steady_key = glimpse.create_agent("steady")
    write_member(tmp_path, "steady", base_url=base_url, key=steady_key, fleet_dir=fleet_dir)
    write_member(
        tmp_path,
        "down",
        base_url=f"http://127.0.0.1:{_free_port()}/api/v1",  # nothing listens there
        key="glm_" + "d" * 40,
        fleet_dir=fleet_dir,
        extra_daemon="[ops]\nunhealthy_after_minutes = 0.01\n",
    )
    write_member(
        tmp_path,
        "resting",
        base_url=base_url,
        key=glimpse.create_agent("resting")[1],
        fleet_dir=fleet_dir,
    )
    (tmp_path / "resting" / "state").mkdir(parents=True)
    (tmp_path / "resting" / "state" / "fleet-paused").write_text("{}\n", encoding="utf-8")
    control = tmp_path / "ctl.sock"
    fleet = Fleet(
        FleetSource(directory=fleet_dir),
        control=control,
        handle_signals=False,
        listen="127.0.0.1:0",
    )
    task = running(fleet)

    async def settled() -> bool:
        if fleet.listener is None:
            return False
        rows = {m.persona: m for m in fleet.health().members}
        return (
            not rows["down"].verdict.healthy
            and rows["steady"].verdict.healthy
            and rows["resting"].state == "paused"
            and len(glimpse.posts_by(steady_id)) == 1
        )

    assert await _wait(settled, 60), fleet.health()
    assert fleet.listener is not None
    host, port = fleet.listener.address

    done = await asyncio.to_thread(_fleet_health, control)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("healthy: 1 of 3 personas healthy, 1 paused; unhealthy: down: ")
    assert "Glimpse unreachable" in lines[0]
    rows = {line.split(":")[0].strip(): line for line in lines[1:]}
    assert set(rows) == {"steady", "down", "resting"}
    assert rows["steady"].startswith("  steady: healthy (running)")
    assert rows["down"].startswith("  down: unhealthy (starting): Glimpse unreachable for")
    assert rows["resting"].startswith("  resting: healthy (paused): paused")

    done = await asyncio.to_thread(_fleet_health, control, "--json")
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    verdicts = {row["persona"]: row for row in doc["personas"]}
    assert doc["healthy"] is True and doc["counts"] == {"healthy": 1, "unhealthy": 1, "paused": 1}
    assert verdicts["down"]["healthy"] is False and verdicts["down"]["since"]

    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        healthz = await http.get("/healthz")
        assert healthz.status_code == 200
        assert {r["persona"]: r["healthy"] for r in healthz.json()["personas"]} == {
            "steady": True,
            "down": False,
            "resting": True,
        }
        await fleet.pause(fleet.member("steady"))
        done = await asyncio.to_thread(_fleet_health, control)
        assert done.returncode == 1, done.stdout
        assert done.stdout.startswith("unhealthy: every persona is unhealthy: down: Glimpse")
        healthz = await http.get("/healthz")
        assert healthz.status_code == 503
        assert healthz.json()["counts"] == {"healthy": 0, "unhealthy": 1, "paused": 2}

    fleet.request_stop()
    await asyncio.wait_for(task, 40)
    done = await asyncio.to_thread(_fleet_health, control)
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: no fleet answers on")


NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
OK, BAD = Verdict(True, "running"), Verdict(False, "Glimpse unreachable for 31 min")
PAUSED = Verdict(True, "paused")


@pytest.mark.parametrize(
    ("loop_at", "members", "healthy", "says"),
    [
        (None, [("a", "running", OK)], False, "has not turned yet"),
        (NOW - timedelta(minutes=11), [("a", "running", OK)], False, "no progress for 660 s"),
        (NOW, [("a", "running", OK), ("b", "stuck", BAD)], False, "stuck: b"),
        (NOW, [], False, "no persona to run"),
        (NOW, [("a", "paused", PAUSED)], True, "every persona is paused (1)"),
        (
            NOW,
            [("a", "running", BAD), ("b", "paused", PAUSED)],
            False,
            "every persona is unhealthy: a:",
        ),
        (
            NOW,
            [("a", "failed", BAD), ("b", "running", OK)],
            True,
            "1 of 2 personas healthy; unhealthy: a:",
        ),
        (NOW, [("a", "running", OK), ("b", "running", OK)], True, "2 of 2 personas healthy"),
    ],
)
def test_the_fleet_verdict(
    loop_at: datetime | None, members: list[tuple[str, str, Verdict]], healthy: bool, says: str
) -> None:
    """The fleet is unhealthy when its loop is gone or stale, a persona is stuck, it has no
    persona, or every persona not paused is unhealthy; one bad persona among good ones is
    named but leaves the fleet healthy."""
    verdict = judge_fleet(loop_at, NOW, [MemberVerdict(*m) for m in members])
    assert verdict.healthy is healthy
    assert says in verdict.reason, verdict.reason
