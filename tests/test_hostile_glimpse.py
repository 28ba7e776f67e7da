"""The hostile-server corpus of issue 11: malformed answers from the Glimpse emulator (wrong
types, missing fields, huge and endless bodies, absurd headers, HTML error pages, cross-host
links and redirects), each run against `glimpse-agent once --post` or `--engage` (the daemon's
own code for one action) as a real process with a deadline. Every case must end with a clear
error or be handled: no traceback, no hang, peak RSS under 150 MiB.

A case that fails today is ``xfail(strict=True)`` naming its defect: once the fix lands it
passes, the strict mark fails, and the mark comes off. ``HOSTILE_REPORT=<file>`` appends one JSON
line per case (traceback, hang, exit code, peak RSS) for bench/RESULTS.md. The cases that wait for
a deadline are marked ``soak`` (run them with ``-m soak``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from glimpse_agent.clock import SystemClock
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.testing import AppSlot
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer
from glimpse_agent.sandbox.toml_writer import write_agent_toml

DEADLINE_S = 45.0  # the client's timeout is 5 s: any single action ends well before this
RSS_LIMIT_MIB = 150
EVIL = "http://evil.example"
Arm = Callable[[GlimpseWorld], object]


@dataclass(frozen=True)
class Case:
    id: str
    cmd: str  # "post" or "engage"
    arm: Arm
    defect: str | None = None  # why it fails today (strict xfail)
    slow: bool = False  # waits for a deadline: only with -m soak
    expect: str | None = None  # a line the run must print (what was really done)


def answer(
    path: str, status: int, body: Any, headers: dict[str, str] | None = None, **kw: Any
) -> Arm:
    return lambda w: w.faults.answer(status, body, headers, path=path, times=100, **kw)


def mutate(
    path: str, rewrite: Callable[[Any], Any], headers: dict[str, str] | None = None, **kw: Any
) -> Arm:
    return lambda w: w.faults.mutate(rewrite, headers, path=path, times=100, **kw)


def items(fn: Callable[[dict[str, Any]], object]) -> Callable[[Any], Any]:
    """Apply ``fn`` to the first item of every list of objects in a page body."""

    def rewrite(body: Any) -> Any:
        for value in body.values() if isinstance(body, dict) else []:
            if isinstance(value, list) and value and isinstance(value[0], dict):
                fn(value[0])
        return body

    return rewrite


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
HTML_HEAD = {"Content-Type": "text/html"}
ME, POSTS, FEED = "/agents/me", "/posts", "/explore"
LIKE, FOLLOW, COMMENT = "/like", "/follow", "/comment"
RETRY = {"posts": {"error": {"code": "rate_limit_exceeded", "message": "slow down", "status": 429}}}
UNKNOWN_BUCKET = {
    "error": {"code": "rate_limit_exceeded", "message": "x", "status": 429, "bucket": "mystery"}
}


def mb50(path: str) -> Arm:
    """A 50 MB list body, built only when the case runs."""

    def arm(world: GlimpseWorld) -> object:
        items = [{"id": f"p{i}", "caption": "x" * 40} for i in range(600_000)]
        return world.faults.answer(200, json.dumps({"data": items}).encode(), path=path, times=100)

    return arm


def _429(value: str) -> Arm:
    return answer(POSTS, 429, RETRY["posts"], {"Retry-After": value}, method="POST")


def _reset(value: str) -> Arm:
    return mutate(ME, lambda b: b, {"X-RateLimit-Reset": value})


CASES: list[Case] = [
    # who am I: wrong types, missing fields, error pages
    Case("me-list", "post", answer(ME, 200, [])),
    Case("me-empty-object", "post", answer(ME, 200, {})),
    Case("me-wrong-types", "post", answer(ME, 200, {"id": 5, "name": None, "verified": "yes"})),
    Case("me-null", "post", answer(ME, 200, None)),
    Case("me-html-200", "post", answer(ME, 200, HTML, HTML_HEAD)),
    Case("me-html-502", "post", answer(ME, 502, HTML, HTML_HEAD)),
    Case(
        "me-text-500",
        "post",
        answer(ME, 500, b"Internal Server Error", {"Content-Type": "text/plain"}),
    ),
    Case("me-invalid-utf8", "post", answer(ME, 200, b'{"id": "\xff\xfe"}')),
    Case("me-nan", "post", answer(ME, 200, b"NaN")),
    Case("me-401-html", "post", answer(ME, 401, HTML, HTML_HEAD)),
    Case("me-403-error-string", "post", answer(ME, 403, {"error": "nope"})),
    Case("me-418", "post", answer(ME, 418, {"error": {"code": "teapot"}})),
    Case("me-299-status", "post", answer(ME, 299, {})),
    Case("me-nested-200000", "post", answer(ME, 200, nested(200_000))),
    Case("me-50mb-list", "post", mb50(ME)),
    Case(
        "me-redirect-cross-host",
        "post",
        answer(ME, 302, b"", {"Location": EVIL + "/api/v1/agents/me"}),
    ),
    Case("me-503-retry-after-inf", "post", answer(ME, 503, {}, {"Retry-After": "inf"})),
    Case(
        "me-endless",
        "post",
        lambda w: w.faults.endless(1.0, path=ME, times=100),
        slow=True,
    ),
    # absurd rate-limit headers on a good answer
    Case("reset-1e20", "post", _reset("1e20")),
    Case("reset-inf", "post", _reset("inf")),
    Case("reset-negative", "post", _reset("-1")),
    Case("remaining-negative", "post", mutate(ME, lambda b: b, {"X-RateLimit-Remaining": "-1"})),
    Case("limit-text", "post", mutate(ME, lambda b: b, {"X-RateLimit-Limit": "lots"})),
    # the post itself
    Case("post-empty-object", "post", answer(POSTS, 201, {}, method="POST")),
    Case("post-id-null", "post", answer(POSTS, 201, {"id": None}, method="POST")),
    Case("post-id-list", "post", answer(POSTS, 201, {"id": ["x"], "seq": "one"}, method="POST")),
    Case("post-string", "post", answer(POSTS, 201, "ok", method="POST")),
    Case("post-html-201", "post", answer(POSTS, 201, HTML, HTML_HEAD, method="POST")),
    Case("post-404", "post", answer(POSTS, 404, {"error": {"code": "not_found"}}, method="POST")),
    Case(
        "post-nested-200000",
        "post",
        answer(POSTS, 201, nested(200_000), method="POST"),
    ),
    Case("post-retry-after-inf", "post", _429("inf")),
    Case("post-retry-after-1e308", "post", _429("1e308")),
    Case("post-retry-after-10-years", "post", _429("315360000")),
    Case("post-retry-after-negative", "post", _429("-5")),
    Case("post-retry-after-nan", "post", _429("NaN")),
    Case("post-retry-after-http-date", "post", _429("Wed, 21 Oct 2999 07:28:00 GMT")),
    Case(
        "post-429-unknown-bucket",
        "post",
        answer(POSTS, 429, UNKNOWN_BUCKET, {"Retry-After": "60"}, method="POST"),
    ),
    Case("post-429-no-body", "post", answer(POSTS, 429, b"", {"Retry-After": "60"}, method="POST")),
    Case(
        "post-redirect-cross-host",
        "post",
        answer(POSTS, 307, b"", {"Location": EVIL + "/api/v1/posts"}, method="POST"),
    ),
    Case("post-drop-after-apply", "post", lambda w: w.faults.drop(path=POSTS, method="POST")),
    Case("post-cut", "post", lambda w: w.faults.cut(path=POSTS, method="POST")),
    Case(
        "post-slow-apply",
        "post",
        lambda w: w.faults.slow_apply(20, path=POSTS, method="POST"),
        slow=True,
    ),
    Case(
        "post-endless",
        "post",
        lambda w: w.faults.endless(1.0, path=POSTS, method="POST"),
        slow=True,
    ),
    # engagement: pages of other agents' posts
    Case("feed-list", "engage", answer(FEED, 200, [])),
    Case("feed-data-string", "engage", answer(FEED, 200, {"data": "x", "posts": "x"})),
    Case(
        "feed-created-at-1e20",
        "engage",
        mutate(FEED, items(lambda p: p.update(created_at=1e20))),
    ),
    Case(
        "feed-created-at-text",
        "engage",
        mutate(FEED, items(lambda p: p.update(created_at="yesterday"))),
    ),
    Case("feed-item-no-id", "engage", mutate(FEED, items(lambda p: p.pop("id", None)))),
    Case("feed-item-id-null", "engage", mutate(FEED, items(lambda p: p.update(id=None)))),
    Case(
        "feed-item-agent-int",
        "engage",
        mutate(FEED, items(lambda p: p.update(agent=7, agent_id=7))),
    ),
    Case(
        "feed-caption-1mb",
        "engage",
        mutate(FEED, items(lambda p: p.update(caption="x" * 1_000_000))),
    ),
    Case(
        "feed-link-cross-host",
        "engage",
        mutate(FEED, lambda b: b, {"Link": f'<{EVIL}/api/v1/explore?max_id=1>; rel="next"'}),
    ),
    Case("feed-nested-200000", "engage", answer(FEED, 200, nested(200_000))),
    Case("feed-50mb-list", "engage", mb50(FEED)),
    Case("feed-html-200", "engage", answer(FEED, 200, HTML, HTML_HEAD)),
    Case(
        "feed-endless",
        "engage",
        lambda w: w.faults.endless(1.0, path=FEED, times=100),
        slow=True,
    ),
    Case(
        "like-success-false",
        "engage",
        answer(LIKE, 200, {"success": False}, method="POST"),
        expect="engage: like 0,",
    ),
    Case("like-html", "engage", answer(LIKE, 200, HTML, HTML_HEAD, method="POST")),
    Case(
        "like-429-unknown-bucket",
        "engage",
        answer(LIKE, 429, UNKNOWN_BUCKET, {"Retry-After": "60"}, method="POST"),
    ),
    Case(
        "like-retry-after-inf",
        "engage",
        answer(LIKE, 429, {}, {"Retry-After": "inf"}, method="POST"),
    ),
    Case(
        "follow-success-false",
        "engage",
        answer(FOLLOW, 200, {"success": False}, method="POST"),
        expect="follow 0,",
    ),
    Case("comment-empty-object", "engage", answer(COMMENT, 201, {}, method="POST")),
    Case("followers-data-string", "engage", answer("/followers", 200, {"data": "x"})),
]


def _param(case: Case) -> Any:
    marks: list[Any] = []
    if case.defect:
        marks.append(pytest.mark.xfail(strict=True, reason=case.defect))
    if case.slow:
        marks.append(pytest.mark.soak)
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def slot() -> Iterator[tuple[AppSlot, str]]:
    app_slot = AppSlot()
    with LoopbackServer(app_slot) as server:
        yield app_slot, server.url + API_ROOT


@dataclass
class Outcome:
    exit_code: int | None
    hung: bool
    traceback: bool
    rss_mib: float
    seconds: float
    output: str


def run_once(config: Path, key: str, cmd: str, tmp: Path) -> Outcome:
    """`glimpse-agent once --<cmd>` with a deadline; peak RSS from the kernel's own count."""
    out = (tmp / "out.txt").open("wb")
    env = {**os.environ, "GLIMPSE_HOSTILE_KEY": key}
    env.pop("NOTIFY_SOCKET", None)
    begun = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "once", f"--{cmd}", "-c", str(config)],
        env=env,
        stdout=out,
        stderr=out,
    )
    hung, status, peak_kib = False, 0, 0
    while True:
        peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - begun > DEADLINE_S:
            hung = True
            os.kill(proc.pid, signal.SIGKILL)
            _, status, _ = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = 0  # reaped by wait4 above; keep Popen from waiting again
    out.close()
    text = (tmp / "out.txt").read_text(encoding="utf-8", errors="replace")
    return Outcome(
        exit_code=None if hung else os.waitstatus_to_exitcode(status),
        hung=hung,
        traceback="Traceback (most recent call last)" in text,
        rss_mib=peak_kib / 1024,
        seconds=time.monotonic() - begun,
        output=text,
    )


def _vm_hwm_kib(pid: int) -> int:
    """The process's peak resident set so far (sampled: the wait4 count of a child forked from
    this big test process would include the test process's own pages)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def write_config(tmp: Path, base_url: str) -> Path:
    persona = tmp / "persona.toml"
    persona.write_text(
        'name = "hostile"\ntimezone = "UTC"\nactive_hours = ["00:00", "23:59"]\n'
        'posts_per_day = 6\nmin_post_gap_minutes = 0\ntopics = ["lighthouses at dusk"]\n'
        'hashtags = ["#aiart"]\n[engagement]\nsessions_per_day = 6\nlikes_per_day = 20\n'
        "comments_per_day = 4\nfollows_per_day = 2\n",
        encoding="utf-8",
    )
    raw = {
        "persona": str(persona),
        "state_dir": str(tmp / "state"),
        "glimpse": {"base_url": base_url, "api_key": "${GLIMPSE_HOSTILE_KEY}", "timeout": 5},
        "images": {"order": ["local"], "local": {"width": 64, "height": 64}},
        "captions": {"order": ["template"]},
    }
    return write_agent_toml(tmp / "agent.toml", raw)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_answer(case: Case, tmp_path: Path, slot: tuple[AppSlot, str]) -> None:
    app_slot, base_url = slot
    world = GlimpseWorld(SystemClock(), seed=5, population=4)
    me, key = world.create_agent("hostile")
    for i, npc in enumerate(world.npc_ids):
        world.post_as(npc, f"tide pools at noon, study {i} #aiart")
        world.follow_as(npc, me)
    app_slot.target = create_glimpse_app(world)
    config = write_config(tmp_path, base_url)
    case.arm(world)
    try:
        outcome = run_once(config, key, case.cmd, tmp_path)
    finally:
        world.faults.release()
    report = os.environ.get("HOSTILE_REPORT")
    if report:
        record = {
            "case": case.id,
            "cmd": case.cmd,
            "exit_code": outcome.exit_code,
            "hung": outcome.hung,
            "traceback": outcome.traceback,
            "rss_mib": round(outcome.rss_mib, 1),
            "seconds": round(outcome.seconds, 1),
            "last_line": outcome.output.strip().splitlines()[-1][:300]
            if outcome.output.strip()
            else "",
        }
        with open(report, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    assert not outcome.hung, f"still running after {DEADLINE_S} s"
    assert not outcome.traceback, outcome.output[-3000:]
    assert outcome.rss_mib < RSS_LIMIT_MIB, f"peak RSS {outcome.rss_mib:.0f} MiB"
    assert case.expect is None or case.expect in outcome.output, outcome.output[-1000:]
