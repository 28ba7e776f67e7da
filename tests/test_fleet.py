"""The fleet in-process against the Glimpse emulator: one persona's failure (a refused key, a
damaged ledger, a broken config, a Glimpse that hangs, a clash with another persona) is
reported and never keeps the others from posting; the shared HTTP client carries each
persona's own key and nobody's cookies; the exit codes when every persona fails."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fleetkit import wait_for as _wait
from fleetkit import write_member
from glimpse_agent.clock import SystemClock
from glimpse_agent.errors import ConfigError, StateError
from glimpse_agent.run.fleet import Fleet, shared_http
from glimpse_agent.run.fleet_configs import FleetSource
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=7, population=6)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


@pytest.fixture
def hanging() -> Iterator[tuple[GlimpseWorld, str]]:
    """A Glimpse of its own that answers nothing (every request waits a minute)."""
    world = GlimpseWorld(SystemClock(), seed=8, population=0)
    world.faults.hang(60.0, times=10**6)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


async def _states(fleet: Fleet) -> dict[str, dict[str, Any]]:
    return {row["persona"]: row for row in (await fleet.status())["personas"]}


async def test_one_personas_failure_never_stops_the_others(
    tmp_path: Path,
    world: tuple[GlimpseWorld, str],
    hanging: tuple[GlimpseWorld, str],
    running: Any,
) -> None:
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    good = {name: glimpse.create_agent(name) for name in ("good_a", "good_b")}
    for name, (_, key) in good.items():
        write_member(tmp_path, name, base_url=base_url, key=key, fleet_dir=fleet_dir)
    # A key Glimpse refuses (401 at start-up).
    write_member(tmp_path, "refused", base_url=base_url, key="glm_" + "x" * 40, fleet_dir=fleet_dir)
    # A ledger damaged beyond repair (no backup to fall back on).
    _, key = glimpse.create_agent("damaged")
    write_member(tmp_path, "damaged", base_url=base_url, key=key, fleet_dir=fleet_dir)
    (tmp_path / "damaged" / "state").mkdir(parents=True)
    (tmp_path / "damaged" / "state" / "ledger.json").write_text("{not json", encoding="utf-8")
    # A Glimpse that never answers.
    hang_world, hang_url = hanging
    _, key = hang_world.create_agent("hangs")
    write_member(tmp_path, "hangs", base_url=hang_url, key=key, fleet_dir=fleet_dir, timeout=1)
    # A config that does not load, and one that takes another persona's state dir.
    (fleet_dir / "broken.toml").write_text('persona = "nowhere.toml"\n[glimpse]\n', "utf-8")
    clash = fleet_dir / "zz_clash.toml"
    clash.write_text(
        (fleet_dir / "good_a.toml").read_text().replace("good_a/persona", "good_b/persona"),
        encoding="utf-8",
    )

    fleet = Fleet(
        FleetSource(directory=fleet_dir), control=tmp_path / "ctl.sock", handle_signals=False
    )
    task = running(fleet)
    started = time.monotonic()
    assert await _wait(lambda: _posted(glimpse, good), 30), (
        "the healthy personas post at once, whatever the others do"
    )
    posted_after = time.monotonic() - started
    assert posted_after < 15, posted_after  # not held behind the hanging Glimpse's timeouts

    async def settled() -> bool:
        rows = await _states(fleet)
        return (
            rows["refused"]["state"] == "failed"
            and rows["damaged"]["state"] == "failed"
            and bool(rows["hangs"]["detail"])
        )

    assert await _wait(settled, 20), await _states(fleet)
    rows = await _states(fleet)
    assert rows["good_a"]["state"] == rows["good_b"]["state"] == "running"
    assert "AuthError" in rows["refused"]["last_error"] or "401" in rows["refused"]["last_error"]
    assert rows["damaged"]["last_error"]
    assert rows["hangs"]["state"] == "starting"
    # Its daemon is ready (state sound) and still asking Glimpse, or waiting to ask again.
    detail = rows["hangs"]["detail"] or ""
    assert "asking Glimpse" in detail or "waiting for Glimpse" in detail, detail
    assert rows["broken"]["state"] == "config_error"
    assert "nowhere.toml" in rows["broken"]["last_error"]
    assert rows["zz_clash"]["state"] == "config_error"
    assert "state directory" in rows["zz_clash"]["last_error"]
    assert not task.done(), "the fleet runs on while some personas run"
    assert {len(glimpse.posts_by(agent_id)) for agent_id, _ in good.values()} == {1}


async def _posted(glimpse: GlimpseWorld, agents: dict[str, tuple[str, str]]) -> bool:
    return all(len(glimpse.posts_by(agent_id)) == 1 for agent_id, _ in agents.values())


async def test_no_config_loads_exit_2(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet.d"
    fleet_dir.mkdir()
    (fleet_dir / "a.toml").write_text("persona = 3\n", encoding="utf-8")
    (fleet_dir / "b.toml").write_text("[glimpse\n", encoding="utf-8")
    fleet = Fleet(FleetSource(directory=fleet_dir), control=tmp_path / "c.sock")
    with pytest.raises(ConfigError) as caught:
        await fleet.run()
    files = {Path(p.file).name for p in caught.value.problems}
    assert {"a.toml", "b.toml"} <= files
    empty = Fleet(FleetSource(directory=tmp_path / "nothing"), control=tmp_path / "c.sock")
    with pytest.raises(ConfigError, match=r"no agent\.toml"):
        await empty.run()


async def test_every_persona_failing_ends_the_fleet_with_their_code(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    _, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    for name in ("one", "two"):
        write_member(tmp_path, name, base_url=base_url, key="glm_" + name * 20, fleet_dir=fleet_dir)
    fleet = Fleet(
        FleetSource(directory=fleet_dir), control=tmp_path / "ctl.sock", handle_signals=False
    )
    code = await asyncio.wait_for(fleet.run(), 30)
    assert code == 5  # both keys refused: what `run -c` says of one
    rows = await _states(fleet)
    assert {r["state"] for r in rows.values()} == {"failed"}


async def test_pause_is_remembered_and_status_says_so(
    tmp_path: Path, world: tuple[GlimpseWorld, str], running: Any
) -> None:
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    agent_id, key = glimpse.create_agent("sleepy")
    write_member(tmp_path, "sleepy", base_url=base_url, key=key, fleet_dir=fleet_dir)
    (tmp_path / "sleepy" / "state").mkdir(parents=True)
    (tmp_path / "sleepy" / "state" / "fleet-paused").write_text("{}\n", encoding="utf-8")
    fleet = Fleet(
        FleetSource(directory=fleet_dir), control=tmp_path / "ctl.sock", handle_signals=False
    )
    running(fleet)
    assert await _wait(lambda: _is(fleet, "sleepy", "paused"), 10)
    await asyncio.sleep(1.0)
    assert glimpse.posts_by(agent_id) == [], "a paused persona does nothing"
    await fleet.resume(fleet.member("sleepy"))
    assert await _wait(lambda: _is(fleet, "sleepy", "running"), 20)
    assert await _wait(lambda: _count(glimpse, agent_id, 1), 20)


async def _is(fleet: Fleet, name: str, state: str) -> bool:
    return (await _states(fleet)).get(name, {}).get("state") == state


async def _count(glimpse: GlimpseWorld, agent_id: str, n: int) -> bool:
    return len(glimpse.posts_by(agent_id)) == n


async def test_shared_client_keeps_no_cookie_and_sends_each_key(tmp_path: Path) -> None:
    """A cookie one persona's service sets never rides on another persona's request."""
    seen: list[dict[str, str]] = []

    async def endpoint(request: Request) -> JSONResponse:
        seen.append({"auth": request.headers.get("authorization", ""), **request.cookies})
        response = JSONResponse({"ok": True})
        response.set_cookie("session", "persona-a-session")
        return response

    app = Starlette(routes=[Route("/x", endpoint, methods=["GET"])])
    with LoopbackServer(app) as server:
        async with shared_http() as http:
            await http.get(server.url + "/x", headers={"Authorization": "Bearer key-a"})
            await http.get(server.url + "/x", headers={"Authorization": "Bearer key-b"})
    assert seen == [{"auth": "Bearer key-a"}, {"auth": "Bearer key-b"}]
    assert isinstance(http, httpx.AsyncClient)


async def test_one_control_socket_one_fleet(
    tmp_path: Path, world: tuple[GlimpseWorld, str], running: Any
) -> None:
    """A second fleet on a socket a live fleet answers on is refused (exit 3); a socket left
    by a fleet that died is taken over."""
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    _, key = glimpse.create_agent("solo")
    write_member(tmp_path, "solo", base_url=base_url, key=key, fleet_dir=fleet_dir)
    control = tmp_path / "ctl" / "fleet.sock"
    control.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(control))
    stale.close()  # bound, never listening: what a killed fleet leaves
    first = Fleet(FleetSource(directory=fleet_dir), control=control, handle_signals=False)
    running(first)
    assert await _wait(lambda: _is(first, "solo", "running"), 20)
    second = Fleet(FleetSource(directory=fleet_dir), control=control, handle_signals=False)
    with pytest.raises(StateError, match="another fleet already answers"):
        await second.run()


async def test_reload_restarts_changed_stops_removed_keeps_the_rest(
    tmp_path: Path, world: tuple[GlimpseWorld, str], running: Any
) -> None:
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    files = {}
    for name in ("keep", "edit", "gone", "typo"):
        _, key = glimpse.create_agent(name + "_x")
        files[name] = write_member(tmp_path, name, base_url=base_url, key=key, fleet_dir=fleet_dir)
    fleet = Fleet(
        FleetSource(directory=fleet_dir), control=tmp_path / "ctl.sock", handle_signals=False
    )
    running(fleet)

    async def all_running() -> bool:
        return {r["state"] for r in (await _states(fleet)).values()} == {"running"}

    assert await _wait(all_running, 20), await _states(fleet)
    daemons = {m.name: m.daemon for m in fleet.members.values()}
    files["edit"].write_text(files["edit"].read_text().replace("timeout = 5.0", "timeout = 6.0"))
    files["gone"].unlink()
    files["typo"].write_text(files["typo"].read_text() + "\nnot_a_key = 1\n")
    result = await fleet.reload()
    assert result["restarted"] == ["edit"] and result["removed"] == ["gone"]
    assert result["unchanged"] == 1 and result["added"] == []
    assert any("not_a_key" in p for p in result["problems"])
    assert await _wait(all_running, 20), await _states(fleet)
    rows = await _states(fleet)
    assert set(rows) == {"keep", "edit", "typo"}
    assert fleet.member("keep").daemon is daemons["keep"], "an unchanged persona is not touched"
    assert fleet.member("typo").daemon is daemons["typo"], "a broken edit keeps what runs"
    assert fleet.member("edit").daemon is not daemons["edit"]
    assert "not_a_key" in rows["typo"]["last_error"]
