"""`glimpse-agent simulate` never writes to a real service or a real ledger: by default it runs
the config's shape against the built-in emulators; either way it works on a throw-away copy of
the ledger (the real state dir is not written, not even locked); the configured endpoints need
``--configured-endpoints``, and any of them off this machine also ``--real-writes``."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from glimpse_agent.cli import build_parser, main
from glimpse_agent.clock import SimulatedClock
from glimpse_agent.commands._progress import DayProgress
from glimpse_agent.commands.simulate import is_loopback
from glimpse_agent.ledger import Ledger, OwnPost
from glimpse_agent.sandbox.stack import SandboxStack
from glimpse_agent.sandbox.toml_writer import write_agent_toml
from streams import captured_stream

ROOT = Path(__file__).resolve().parents[1]
PERSONA = ROOT / "src" / "glimpse_agent" / "personas" / "moss.toml"
START = datetime(2026, 4, 6, tzinfo=UTC)
ARGV = ["--days", "2", "--start", "2026-04-06"]


@pytest.fixture(autouse=True)
def _hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


def real_services_config(tmp_path: Path) -> Path:
    """An agent.toml for real, remote services (none of which a test may reach)."""
    raw: dict[str, Any] = {
        "persona": str(PERSONA),
        "state_dir": str(tmp_path / "state"),
        "glimpse": {"base_url": "https://glimpse.invalid/api/v1", "api_key": "glm_real_key_0001"},
        "images": {
            "order": ["glif", "local"],
            "glif": {
                "token": "glif-real-token",
                "glif_id": "real-glif",
                "base_url": "https://simple-api.glif.invalid",
                "api_url": "https://glif.invalid/api",
                "cost_usd": 0.01,
            },
        },
        "captions": {
            "order": ["langflow", "template"],
            "langflow": {"base_url": "https://langflow.invalid", "flow": "real-flow"},
        },
    }
    return write_agent_toml(tmp_path / "agent.toml", raw)


def seed_ledger(state: Path) -> None:
    """A real ledger with one post from yesterday, as a running persona has."""
    at = START - timedelta(hours=10)
    with Ledger.open(state, clock=SimulatedClock(at)) as ledger:
        ledger.add_post(OwnPost("post-1", 1, at, "p", "moss", "cap", "local", "offline", 0.0))
        ledger.record_action("posts", at, ref="post-1")


def snapshot(state: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(state.iterdir())}


def post_counts(out: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^  (2026-04-0\d)  posts (\d)/(\d)", out, re.M)


def test_default_runs_the_configs_shape_against_emulators_and_leaves_the_ledger_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config for remote services, its state dir locked by a running daemon: `simulate`
    still runs (emulated Glif and Langflow in the config's order) and the real ledger's files
    keep their bytes and mtimes; no file is added, the lock is never asked for."""
    config = real_services_config(tmp_path)
    state = tmp_path / "state"
    seed_ledger(state)
    before = snapshot(state)
    with Ledger.open(state, clock=SimulatedClock(START)):  # the daemon holds the lock
        during = snapshot(state)
        assert main(["simulate", "-c", str(config), *ARGV]) == 0
        after = snapshot(state)
    out = capsys.readouterr().out
    assert after == during
    assert {n: v for n, v in after.items() if n != "lock"} == {
        n: v for n, v in before.items() if n != "lock"
    }
    assert "built-in emulators (images: glif, local; captions: langflow, template)" in out
    days = post_counts(out)
    assert [d for d, _, _ in days] == ["2026-04-06", "2026-04-07"]
    assert all(done == planned for _, done, planned in days) and days[0][1] != "0"


def test_configured_endpoints_on_loopback_run_there_on_a_copy_of_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--configured-endpoints against services on this machine: the posts land on that
    Glimpse, while the persona's real ledger is unchanged and was never locked."""
    with SandboxStack(start=START) as stack:
        key = asyncio.run(stack.register("moss", "moss@owner.example"))
        config = write_agent_toml(
            tmp_path / "agent.toml", stack.agent_toml(PERSONA, tmp_path / "state", api_key=key)
        )
        seed_ledger(tmp_path / "state")
        before = snapshot(tmp_path / "state")
        with Ledger.open(tmp_path / "state", clock=SimulatedClock(START)):
            code = main(["simulate", "-c", str(config), *ARGV, "--configured-endpoints"])
        posts = stack.world.posts_by(stack.world.agent_id_by_name("moss") or "")
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(posts) == sum(int(done) for _, done, _ in post_counts(out)) >= 2
    after = snapshot(tmp_path / "state")
    assert {n: v for n, v in after.items() if n != "lock"} == {
        n: v for n, v in before.items() if n != "lock"
    }


def test_a_remote_endpoint_is_refused_without_real_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--configured-endpoints with a service off this machine: exit 2 before anything runs,
    naming the URL and the flag; the state dir is not even created."""
    config = real_services_config(tmp_path)
    assert main(["simulate", "-c", str(config), *ARGV, "--configured-endpoints"]) == 2
    captured = capsys.readouterr()
    assert "https://glimpse.invalid/api/v1 (glimpse.base_url)" in captured.err
    assert "https://langflow.invalid (captions.langflow.base_url)" in captured.err
    assert "--real-writes" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert not (tmp_path / "state").exists()


def test_a_backend_without_base_url_counts_as_its_public_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Everything on loopback but an OpenAI images section with no base_url: that is
    api.openai.com, so it is refused too."""
    raw: dict[str, Any] = {
        "persona": str(PERSONA),
        "state_dir": str(tmp_path / "state"),
        "glimpse": {"base_url": "http://127.0.0.1:9/api/v1", "api_key": "glm_k"},
        "images": {"order": ["openai"], "openai": {"api_key": "sk-real"}},
        "captions": {"order": ["template"]},
    }
    config = write_agent_toml(tmp_path / "agent.toml", raw)
    assert main(["simulate", "-c", str(config), *ARGV, "--configured-endpoints"]) == 2
    err = capsys.readouterr().err
    assert "https://api.openai.com/v1 (images.openai.base_url)" in err
    assert "glimpse.base_url" not in err


def test_real_writes_goes_only_with_configured_endpoints_and_says_what_it_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--real-writes alone is a usage error; its --help says it makes real writes."""
    config = real_services_config(tmp_path)
    assert main(["simulate", "-c", str(config), *ARGV, "--real-writes"]) == 2
    assert "--configured-endpoints" in capsys.readouterr().err
    sub = next(a for a in build_parser()._actions if a.dest == "command" and hasattr(a, "choices"))
    help_text = " ".join(sub.choices["simulate"].format_help().split())  # type: ignore[index]
    assert "MAKES REAL WRITES" in help_text


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:7860", True),
        ("http://127.3.4.5/x", True),
        ("http://[::1]:8080/v1", True),
        ("http://localhost:9/api", True),
        ("https://glimpse-blush.vercel.app/api/v1", False),
        ("http://10.0.0.5:7860", False),
        ("https://127.0.0.1.nip.io/", False),
        ("http://localhost.example.com/", False),
    ],
)
def test_loopback_is_judged_by_the_url_alone(url: str, local: bool) -> None:
    assert is_loopback(url) is local


# --------------------------------------------------------------------------- progress


@pytest.mark.parametrize("terminal", [True, False])
def test_simulate_shows_days_on_a_terminal_and_nothing_extra_in_a_pipe(
    terminal: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = real_services_config(tmp_path)
    with captured_stream(terminal=terminal) as (stderr, got):
        monkeypatch.setattr("sys.stderr", stderr)
        code = main(["--log-level", "error", "simulate", "-c", str(config), *ARGV])
    monkeypatch.undo()
    assert code == 0
    assert post_counts(capsys.readouterr().out)
    raw = b"".join(got).decode("utf-8")
    if terminal:
        assert "simulating" in raw and "2/2 days" in raw
        assert "\r" in raw  # redrawn in place
    else:
        assert raw == ""  # no bar, and at --log-level error no log either


@pytest.mark.parametrize("terminal", [True, False])
def test_sandbox_shows_days_on_a_terminal_only(
    terminal: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--log-level", "error", "sandbox", "--persona", str(PERSONA), *ARGV]
    with captured_stream(terminal=terminal) as (stderr, got):
        monkeypatch.setattr("sys.stderr", stderr)
        code = main([*argv, "--state-dir", str(tmp_path / "sb")])
    monkeypatch.undo()
    assert code == 0
    assert "Report:" in capsys.readouterr().out
    raw = b"".join(got).decode("utf-8")
    assert ("2/2 days" in raw) is terminal
    if not terminal:
        assert raw == ""


def test_day_progress_counts_whole_simulated_days_and_lets_log_lines_through() -> None:
    """Each simulated instant moves the bar to the whole days behind it; a log line written
    beside the bar (in pieces, as print does) comes out whole."""
    out = io.StringIO()
    progress = DayProgress(START, 3, stream=out, force=True)
    log = progress.shared_stream()
    progress(START + timedelta(hours=5))
    assert progress._bar.n == 0
    progress(START + timedelta(days=1, hours=2))
    assert progress._bar.n == 1
    log.write("warning something happened")
    log.write("\n")
    progress(START + timedelta(days=2, hours=23))
    assert progress._bar.n == 2
    progress.finish()
    assert progress._bar.n == 3
    text = out.getvalue()
    assert "warning something happened\n" in text
    assert "3/3 days" in text


def test_day_progress_off_a_terminal_writes_nothing() -> None:
    out = io.StringIO()
    progress = DayProgress(START, 3, stream=out)
    assert progress.shared_stream() is out
    progress(START + timedelta(days=2))
    progress.finish()
    assert out.getvalue() == ""
