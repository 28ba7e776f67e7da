"""The fleet soak (``tests/soak/fleet.py``) under pytest: 20 personas, one with a refused key,
one whose Glimpse stops answering halfway, one paused halfway. The simulated week is marked
``soak`` (x720, about 15 minutes: ``pytest -m soak tests/soak/test_fleet_soak.py``); one simulated
day runs with the suite (x1440, about a minute). Same promises in both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .harness import faketime_missing

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(faketime_missing() is not None, reason=str(faketime_missing()))


def _run(*args: str, timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.soak.fleet", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    start = done.stdout.find("{")
    assert start >= 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures: dict[str, Any] = json.loads(done.stdout[start:])
    return figures


def _assert_promises(figures: dict[str, Any]) -> None:
    per = figures["per_persona"]
    planned = figures["posts_planned_each"]
    healthy = {n: r for n, r in per.items() if n not in ("refused", "hangs", "paused")}
    assert len(healthy) == 17, per.keys()
    assert {n: r["posts"] for n, r in healthy.items()} == dict.fromkeys(healthy, planned), per
    assert {n: r["duplicates"] for n, r in per.items()} == dict.fromkeys(per, 0), per
    assert {n: r["rate_limited"] for n, r in per.items()} == dict.fromkeys(per, 0), per
    assert {r["state"] for r in healthy.values()} == {"running"}, per
    # The broken ones are reported, and never post for anyone.
    assert per["refused"]["state"] == "failed" and "401" in per["refused"]["last_error"]
    assert per["refused"]["posts"] == 0
    assert per["hangs"]["last_error"] and per["hangs"]["posts_after_hang"] == 0, per["hangs"]
    assert figures["status_at_half"]["paused"] == "paused" and per["paused"]["state"] == "paused"
    assert per["paused"]["posts_after_pause"] == 0, per["paused"]
    assert figures["alive_at_end"] and figures["stop_exit_code"] == 0, figures
    assert figures["tracebacks"] == 0 and figures["keys_in_logs"] == 0, figures
    assert figures["broken"] == [], figures["broken"]


def test_fleet_of_20_for_a_day() -> None:
    _assert_promises(_run("--days", "1", "--speed", "1440", timeout=600))


@pytest.mark.soak
def test_fleet_of_20_for_a_simulated_week() -> None:
    _assert_promises(_run("--days", "7", "--speed", "720", timeout=2700))
