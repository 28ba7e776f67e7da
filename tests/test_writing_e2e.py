"""End to end: the agent (``runtime.open_runtime``) against the sandbox's emulators with the
Langflow emulator stopped, so its port refuses connections. A post still goes out, captioned
by the next source of ``[captions] order``, and the Langflow failure is in the log.

The module has its own ``SandboxStack`` (its Langflow is down for every test here); each test
starts at 10:00 UTC (11:00 in Paris, aurora's active hours) of a day no other test used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from itertools import count
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from glimpse_agent.clock import utc
from glimpse_agent.config import LoadedAgent, load_persona, parse_config
from glimpse_agent.run.assemble import Runtime, open_runtime
from glimpse_agent.sandbox.stack import SandboxStack

PERSONA_PATH = Path(__file__).resolve().parents[1] / "personas" / "aurora.toml"
START = utc(2026, 5, 4, 10)
_names = count(1)


@pytest.fixture(scope="module")
def stack() -> Iterator[SandboxStack]:
    with SandboxStack(start=START) as running:
        running.servers["langflow"].stop()  # Langflow is down: its port refuses connections
        try:
            yield running
        finally:
            running.world.faults.release()


@pytest.fixture
def sandbox(stack: SandboxStack) -> SandboxStack:
    """The shared stack at 10:00 UTC of a fresh day."""
    now = stack.clock.now()
    stack.clock.set(datetime.combine(now.date() + timedelta(days=1), dtime(10), tzinfo=UTC))
    stack.world.advance_to()
    return stack


@pytest.fixture
async def runtimes() -> AsyncIterator[list[Runtime]]:
    opened: list[Runtime] = []
    try:
        yield opened
    finally:
        for runtime in reversed(opened):
            await runtime.close()


@pytest.mark.parametrize(
    ("order", "expected"),
    [(["langflow", "llm", "template"], "llm"), (["langflow", "template"], "template")],
)
async def test_post_goes_out_with_the_next_caption_source_when_langflow_is_down(
    sandbox: SandboxStack,
    runtimes: list[Runtime],
    tmp_path: Path,
    order: list[str],
    expected: str,
) -> None:
    """With Langflow unreachable, post() still publishes one post on Glimpse; its caption comes
    from the next source in captions.order, and the Langflow failure is logged."""
    stack = sandbox
    agent_id, key = stack.world.create_agent(f"aurora_lfdown_{next(_names)}")
    state = tmp_path / "state"
    raw = stack.agent_toml(PERSONA_PATH, state, api_key=key, captions=order)
    loaded = LoadedAgent(parse_config(raw, source=state / "agent.toml"), load_persona(PERSONA_PATH))
    replies_before = len(stack.chat.replies)

    with capture_logs() as logs:
        runtime = await open_runtime(loaded, clock=stack.clock)
        runtimes.append(runtime)
        await runtime.agent.startup()
        outcome = await runtime.agent.post()

    assert outcome.ok, outcome.detail
    posts = stack.world.posts_by(agent_id)
    assert [p.id for p in posts] == [outcome.post_id]
    caption = posts[0].caption
    assert caption
    posted = [e for e in logs if e["event"] == "posted"]
    assert [e["caption_source"] for e in posted] == [expected]
    ready = [e for e in logs if e["event"] == "caption.ready"]
    assert [e["source"] for e in ready] == [expected]
    failed = [e for e in logs if e["event"] == "caption.source_failed"]
    assert failed and {e["source"] for e in failed} == {"langflow"}
    assert {e["kind"] for e in failed} == {"Unavailable"}
    assert all("cannot reach" in e["error"] for e in failed)
    assert stack.langflow.runs == []  # nothing ever reached the (stopped) flow
    model_texts = stack.chat.replies[replies_before:]
    if expected == "llm":
        assert caption in model_texts
    else:
        assert caption not in model_texts
    own = runtime.ledger.ledger.recent_posts(10)
    assert [(p.post_id, p.caption) for p in own] == [(outcome.post_id, caption)]
    assert runtime.ledger.ledger.unsettled_intents() == []
