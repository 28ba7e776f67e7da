"""`[ops] listen`: /metrics in Prometheus' own format (parsed here with prometheus_client's
text parser) and /healthz, per persona, after a real post against the emulators — and no
listener, no port and no prometheus_client when it is not configured."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from glimpse_agent.clock import SystemClock
from glimpse_agent.commands.once import act
from glimpse_agent.config import load_agent
from glimpse_agent.ledger import Ledger
from glimpse_agent.ops.listener import OpsListener
from glimpse_agent.ops.metrics import PersonaFeed
from glimpse_agent.ops.tallies import Tallies
from glimpse_agent.ops.vitals import Vitals
from glimpse_agent.run.assemble import open_runtime
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer
from polling import wait_until

FAMILIES = {
    "glimpse_agent_info",
    "glimpse_agent_healthy",
    "glimpse_agent_glimpse_reachable",
    "glimpse_agent_glimpse_requests",
    "glimpse_agent_glimpse_request_seconds",
    "glimpse_agent_actions",
    "glimpse_agent_backend_attempts",
    "glimpse_agent_backend_failures",
    "glimpse_agent_backend_latency_seconds",
    "glimpse_agent_backend_spend_usd",
    "glimpse_agent_quota_used_today",
    "glimpse_agent_quota_left",
    "glimpse_agent_quota_daily_cap",
    "glimpse_agent_spend_usd_today",
    "glimpse_agent_budget_usd_per_day",
    "glimpse_agent_last_post_timestamp_seconds",
    "glimpse_agent_unsettled_intents",
    "glimpse_agent_ledger_bytes",
}


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=4, population=5)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT


def _config(tmp: Path, base_url: str, *, listen: str | None = None, posts: int = 3) -> Path:
    (tmp / "persona.toml").write_text(
        'name = "metered"\ntimezone = "UTC"\nactive_hours = ["00:00", "23:59"]\n'
        f"posts_per_day = {posts}\n"
        'topics = ["lighthouses at dusk"]\nbudget_usd_per_day = 2.5\n',
        encoding="utf-8",
    )
    config = tmp / "agent.toml"
    config.write_text(
        f'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\nbase_url = "{base_url}"\n'
        'api_key = "${METRICS_TEST_KEY}"\ntimeout = 5\n[images]\norder = ["local"]\n'
        '[images.local]\nwidth = 128\nheight = 128\n[captions]\norder = ["template"]\n'
        + (f'[ops]\nlisten = "{listen}"\n' if listen else ""),
        encoding="utf-8",
    )
    return config


def _samples(text: str) -> dict[str, list[Sample]]:
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


async def test_metrics_after_a_post_show_every_family_with_plausible_values(
    tmp_path: Path, world: tuple[GlimpseWorld, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `once --post`'s own code path against the emulators, a scrape of /metrics parses
    with prometheus_client's parser and shows every family, labelled with the persona: one post
    ok, one local image attempt with its latency, Glimpse reachable with its requests counted,
    the posts bucket used once and its cap, spend and budget, the post's time, the ledger's
    size."""
    glimpse, base_url = world
    agent_id, key = glimpse.create_agent("metered")
    monkeypatch.setenv("METRICS_TEST_KEY", key)
    loaded = load_agent(_config(tmp_path, base_url))
    clock = SystemClock()
    before = datetime.now(UTC)
    async with await open_runtime(loaded, clock=clock) as runtime:
        outcome = await act(runtime, post=True)
        assert outcome.ok and len(glimpse.posts_by(agent_id)) == 1

        async def read_ledger() -> dict[str, object]:
            return await runtime.ledger.run(Ledger.status_view, clock.now(), loaded.persona)

        feed = PersonaFeed(
            "metered", runtime.vitals, runtime.tallies, clock, read_ledger=read_ledger
        )
        async with OpsListener("127.0.0.1", 0, [feed]) as listener:
            host, port = listener.address
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
                scraped = await http.get("/metrics")
                health = await http.get("/healthz")
                missing = await http.get("/nothing")
                posted = await http.post("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = _samples(scraped.text)
    assert set(families) >= FAMILIES, FAMILIES - set(families)
    persona = {s.labels.get("persona") for f in families.values() for s in f}
    assert persona == {"metered"}

    assert (
        _value(
            families["glimpse_agent_actions"],
            "glimpse_agent_actions_total",
            kind="post",
            outcome="ok",
        )
        == 1
    )
    attempts = families["glimpse_agent_backend_attempts"]
    assert (
        _value(attempts, "glimpse_agent_backend_attempts_total", backend="local", outcome="ok") == 1
    )
    latency = families["glimpse_agent_backend_latency_seconds"]
    assert _value(latency, "glimpse_agent_backend_latency_seconds_count", backend="local") == 1
    took = _value(latency, "glimpse_agent_backend_latency_seconds_sum", backend="local")
    assert 0 < took < 60
    assert families["glimpse_agent_backend_failures"] == []  # nothing failed
    assert (
        _value(families["glimpse_agent_glimpse_reachable"], "glimpse_agent_glimpse_reachable") == 1
    )
    requests = families["glimpse_agent_glimpse_requests"]
    # who am I, the reconcile's look at our posts, the post itself, at the least
    assert _value(requests, "glimpse_agent_glimpse_requests_total", outcome="ok") >= 3

    quota = families["glimpse_agent_quota_used_today"]
    assert _value(quota, "glimpse_agent_quota_used_today", bucket="posts") == 1
    cap = _value(
        families["glimpse_agent_quota_daily_cap"], "glimpse_agent_quota_daily_cap", bucket="posts"
    )
    left = _value(families["glimpse_agent_quota_left"], "glimpse_agent_quota_left", bucket="posts")
    assert cap == 3 and 0 <= left <= cap - 1
    assert _value(families["glimpse_agent_spend_usd_today"], "glimpse_agent_spend_usd_today") == 0
    assert (
        _value(families["glimpse_agent_budget_usd_per_day"], "glimpse_agent_budget_usd_per_day")
        == 2.5
    )
    last_post = _value(
        families["glimpse_agent_last_post_timestamp_seconds"],
        "glimpse_agent_last_post_timestamp_seconds",
    )
    assert before.timestamp() - 1 <= last_post <= time.time() + 1
    assert _value(families["glimpse_agent_ledger_bytes"], "glimpse_agent_ledger_bytes") > 100
    assert (
        _value(families["glimpse_agent_unsettled_intents"], "glimpse_agent_unsettled_intents") == 0
    )

    # Outside a daemon there is no heartbeat: /healthz says so, as `health` would.
    assert health.status_code == 503
    assert health.json()["personas"][0]["reason"].startswith("no heartbeat")
    assert missing.status_code == 404 and posted.status_code == 405


async def test_many_personas_share_one_registry_each_family_once() -> None:
    """Two personas served by one listener (the fleet's shape): each family appears once, with
    one sample set per persona, told apart by the persona label."""
    clock = SystemClock()
    feeds = []
    for name, posts in (("aurora", 2), ("kuro", 5)):
        tallies = Tallies()
        tallies.actions[("post", "ok")] = posts
        feeds.append(PersonaFeed(name, Vitals(clock), tallies, clock))
    async with OpsListener("127.0.0.1", 0, feeds) as listener:
        host, port = listener.address
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://{host}:{port}/metrics")).text
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    actions = _samples(text)["glimpse_agent_actions"]
    assert {s.labels["persona"]: s.value for s in actions} == {"aurora": 2, "kuro": 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_daemon_serves_healthz_and_metrics_after_a_once_post(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    """`once --post` (a real process), then `run` with [ops] listen: /healthz answers 200 with
    the persona healthy once the daemon is up, and /metrics shows the ledger's view (the post
    of `once`, its bucket) beside the daemon's own Glimpse requests; SIGTERM still exits 0."""
    glimpse, base_url = world
    agent_id, key = glimpse.create_agent("metered")
    port = _free_port()
    # One post a day, made by `once`: the daemon then has no post due, only its requests.
    config = _config(tmp_path, base_url, listen=f"127.0.0.1:{port}", posts=1)
    env = {**os.environ, "METRICS_TEST_KEY": key}
    env.pop("NOTIFY_SOCKET", None)
    once = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "once", "-c", str(config), "--post"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stderr
    assert len(glimpse.posts_by(agent_id)) == 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def running() -> bool:
        """Healthy, and past start-up (READY=1 comes before Glimpse is asked)."""
        try:
            answer = httpx.get(f"{url}/healthz", timeout=5)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json()["personas"][0]["reason"].startswith(
            "running"
        )

    try:
        assert wait_until(running, 60), "/healthz never said healthy and running"
        health = httpx.get(f"{url}/healthz", timeout=5).json()
        text = httpx.get(f"{url}/metrics", timeout=10).text
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
    assert code == 0, err
    assert health["healthy"] is True and health["personas"][0]["persona"] == "metered"
    families = _samples(text)
    assert set(families) >= FAMILIES
    assert _value(families["glimpse_agent_healthy"], "glimpse_agent_healthy") == 1
    used = _value(
        families["glimpse_agent_quota_used_today"], "glimpse_agent_quota_used_today", bucket="posts"
    )
    assert used == len(glimpse.posts_by(agent_id)) == 1  # the post of `once`
    last_post = _value(
        families["glimpse_agent_last_post_timestamp_seconds"],
        "glimpse_agent_last_post_timestamp_seconds",
    )
    assert abs(last_post - time.time()) < 300
    assert (
        _value(
            families["glimpse_agent_glimpse_requests"],
            "glimpse_agent_glimpse_requests_total",
            outcome="ok",
        )
        >= 1
    )
    listening = [json.loads(ln) for ln in err.splitlines() if '"ops_listening"' in ln]
    assert listening and listening[0]["address"] == f"127.0.0.1:{port}"
    assert listening[0]["persona"] == "metered"


def test_a_daemon_without_a_listener_never_loads_prometheus_client() -> None:
    """The modules the daemon and its listener live in import prometheus_client only when a
    listener starts: the idle daemon without [ops] listen stays light."""
    code = (
        "import sys\n"
        "import glimpse_agent.cli, glimpse_agent.commands.run, glimpse_agent.run.daemon\n"
        "import glimpse_agent.run.assemble, glimpse_agent.ops.metrics, glimpse_agent.ops.listener\n"
        "import glimpse_agent.commands.health\n"
        "print(sorted(m for m in sys.modules if m.startswith('prometheus_client')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_address_in_use_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    """[ops] listen on a port another process holds: exit 2, `ops.listen` named, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path, "http://127.0.0.1:9/api/v1", listen=f"127.0.0.1:{port}")
        env = {**os.environ, "METRICS_TEST_KEY": "gk_listen_0123456789abcdef"}
        done = subprocess.run(
            [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert "ops.listen: cannot listen on 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("listen", ["9464", "localhost", "127.0.0.1:99999", ":9464"])
def test_a_bad_listen_address_is_a_config_error(
    tmp_path: Path,
    listen: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any command refuses it with exit 2, naming ops.listen."""
    from glimpse_agent.cli import main

    config = _config(tmp_path, "http://127.0.0.1:9/api/v1", listen=listen)
    monkeypatch.setenv("METRICS_TEST_KEY", "gk_listen_0123456789abcdef")
    assert main(["status", "-c", str(config)]) == 2
    assert "ops.listen" in capsys.readouterr().err


def test_patience_defaults_to_thirty_minutes_and_the_listener_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an [ops] section: unhealthy after 30 minutes of a fault, no listener."""
    monkeypatch.setenv("METRICS_TEST_KEY", "gk_listen_0123456789abcdef")
    loaded = load_agent(_config(tmp_path, "http://127.0.0.1:9/api/v1"))
    assert loaded.config.ops.unhealthy_after_minutes == 30
    assert loaded.config.ops.address is None
