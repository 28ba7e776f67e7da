"""End to end: the agent (``runtime.open_runtime``) against every emulator of the sandbox, over
real HTTP on loopback, with one simulated clock.

One ``SandboxStack`` serves the whole module. Each test gets fresh agents and state dirs, and
starts at 10:00 UTC (11:00 in Paris, aurora's active hours) of a day no other test used, so
daily quotas and the test order never interfere.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from glimpse_agent import cli
from glimpse_agent.agent import settle as settle_module
from glimpse_agent.agent.reconcile import CERTAINTY_MARGIN
from glimpse_agent.clock import utc
from glimpse_agent.config import LoadedAgent, load_persona, parse_config
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.ledger import Ledger
from glimpse_agent.persona import Persona
from glimpse_agent.planner import DayPlan, Slot, active_window
from glimpse_agent.run.assemble import Runtime, open_runtime
from glimpse_agent.run.simulation import Simulation
from glimpse_agent.sandbox.glimpse.world import HOSTILE_TEXTS
from glimpse_agent.sandbox.openai_chat import obedient_responder, plausible_responder
from glimpse_agent.sandbox.stack import CHAT_KEY, LANGFLOW_KEY, SandboxStack
from glimpse_agent.sandbox.toml_writer import dumps

PERSONA_PATH = Path(__file__).resolve().parents[1] / "personas" / "aurora.toml"
START = utc(2026, 3, 4, 10)
LIKE_ROUTE = "POST /posts/{post_id}/like"
COMMENT_ROUTE = "POST /posts/{post_id}/comment"
FOLLOW_ROUTE = "POST /agents/{agent_id}/follow"
CREATE_POST_ROUTE = "POST /posts"
#: Writes an agent can make on Glimpse (the read-only helpers /captions/suggest and
#: /prompts/optimize are POSTs but change nothing).
WRITE_ROUTES = frozenset(
    {
        CREATE_POST_ROUTE,
        LIKE_ROUTE,
        "POST /posts/{post_id}/dislike",
        "DELETE /posts/{post_id}/reaction",
        COMMENT_ROUTE,
        FOLLOW_ROUTE,
        "DELETE /agents/{agent_id}/follow",
        "DELETE /posts/{post_id}",
        "PATCH /agents/me",
        "PUT /agents/me/settings/image-generation",
        "DELETE /agents/me/settings/image-generation",
        "POST /images/generate",
    }
)
_names = count(1)


class SimulatedCrash(BaseException):
    """The process dies here (a BaseException, so no ``except Exception`` can swallow it)."""


# ---------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def stack() -> Iterator[SandboxStack]:
    with SandboxStack(start=START) as running:
        try:
            yield running
        finally:
            running.world.faults.release()  # end any hang still holding a server thread


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(PERSONA_PATH)


@pytest.fixture
def sandbox(stack: SandboxStack) -> Iterator[SandboxStack]:
    """The shared stack at 10:00 UTC of a fresh day, with no fault armed (on Glimpse or the
    image service) and a sane model."""
    now = stack.clock.now()
    stack.clock.set(datetime.combine(now.date() + timedelta(days=1), dtime(10), tzinfo=UTC))
    stack.world.advance_to()  # the crowd's day happens now, before this test's agents exist
    stack.world.faults.clear()
    stack.images.faults.clear()
    try:
        yield stack
    finally:
        stack.world.faults.clear()
        stack.images.faults.clear()
        stack.chat.responder = plausible_responder


@dataclass
class Booted:
    """One agent of a test: its config, its id and key on Glimpse, and its open runtime."""

    loaded: LoadedAgent
    agent_id: str
    key: str
    runtime: Runtime

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger.ledger


class Agents:
    """Makes (and at teardown closes) agents against the stack."""

    def __init__(self, stack: SandboxStack, persona: Persona, root: Path) -> None:
        self.stack = stack
        self.persona = persona
        self.root = root
        self.runtimes: list[Runtime] = []

    def config(
        self,
        *,
        images: list[str] | None = None,
        glimpse_timeout: float | None = None,
    ) -> tuple[LoadedAgent, str, str]:
        n = next(_names)
        agent_id, key = self.stack.world.create_agent(f"aurora_e2e_{n}")
        state = self.root / f"state-{n}"
        raw = self.stack.agent_toml(PERSONA_PATH, state, api_key=key, images=images or ["local"])
        if glimpse_timeout is not None:
            raw["glimpse"]["timeout"] = glimpse_timeout
        config = parse_config(raw, source=state / "agent.toml")
        return LoadedAgent(config, self.persona), agent_id, key

    async def open(self, loaded: LoadedAgent, *, dry_run: bool = False) -> Runtime:
        """``open_runtime`` + ``startup`` (which reconciles), as the daemon does at start."""
        runtime = await open_runtime(loaded, clock=self.stack.clock, dry_run=dry_run)
        self.runtimes.append(runtime)
        await runtime.agent.startup()
        return runtime

    async def new(
        self,
        *,
        images: list[str] | None = None,
        glimpse_timeout: float | None = None,
        dry_run: bool = False,
    ) -> Booted:
        loaded, agent_id, key = self.config(images=images, glimpse_timeout=glimpse_timeout)
        return Booted(loaded, agent_id, key, await self.open(loaded, dry_run=dry_run))

    async def restart(self, booted: Booted) -> Booted:
        """Close the runtime and open a new one on the same state dir (a process restart)."""
        await booted.runtime.close()
        return Booted(booted.loaded, booted.agent_id, booted.key, await self.open(booted.loaded))

    async def aclose(self) -> None:
        for runtime in reversed(self.runtimes):
            await runtime.close()  # closing twice is a no-op


@pytest.fixture
async def agents(
    sandbox: SandboxStack,
    persona: Persona,
    tmp_path: Path,
) -> AsyncIterator[Agents]:
    made = Agents(sandbox, persona, tmp_path)
    try:
        yield made
    finally:
        await made.aclose()


def utc_day(stack: SandboxStack) -> date:
    return stack.clock.now().date()


def routes(stack: SandboxStack) -> dict[str, int]:
    return dict(stack.world.stats.requests_by_route)


def route_delta(stack: SandboxStack, before: dict[str, int]) -> dict[str, int]:
    after = routes(stack)
    return {r: n - before.get(r, 0) for r, n in after.items() if n != before.get(r, 0)}


def today_plan(plans: list[DayPlan], persona: Persona, now: datetime) -> DayPlan:
    local_day = now.astimezone(ZoneInfo(persona.timezone)).date()
    return next(p for p in plans if p.local_day == local_day)


def new_follower(stack: SandboxStack, agent_id: str) -> str:
    """A crowd member that does not follow ``agent_id`` yet."""
    followers = set(stack.world.followers_of(agent_id))
    return next(npc for npc in stack.world.npc_ids if npc not in followers)


def relevant_posts(stack: SandboxStack, n: int) -> list[str]:
    """``n`` posts by crowd members that aurora will want to like (her topics and tags)."""
    npcs = stack.world.npc_ids
    captions = (
        "Storm clouds at golden hour over the rooftops #skies #aiart #impressionism",
        "Fog over the Seine before sunrise #skies #impressionism",
        "Impossible rainbows after the rain, loose oil paint #aiart #skies",
    )
    return [stack.world.post_as(npcs[i % len(npcs)], captions[i % len(captions)]) for i in range(n)]


async def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return bool(condition())


# ---------------------------------------------------------------------- posting


async def test_post_publishes_one_post_with_langflow_caption(agents: Agents) -> None:
    """One post() puts one post on Glimpse, captioned by the Langflow flow, counted once."""
    stack = agents.stack
    loaded, agent_id, _ = agents.config()
    with capture_logs() as logs:
        runtime = await agents.open(loaded)
        outcome = await runtime.agent.post()

    assert outcome.ok, outcome.detail
    posts = stack.world.posts_by(agent_id)
    assert [p.id for p in posts] == [outcome.post_id]
    caption = posts[0].caption
    assert caption in {run.text for run in stack.langflow.runs}  # the flow's answer, as is
    own = runtime.ledger.ledger.recent_posts(1)[0]
    assert own.topic.lower() in caption.lower()  # the tweaks reached the flow's prompt
    assert any(tag in caption for tag in agents.persona.hashtags)
    posted = [e for e in logs if e["event"] == "posted"]
    assert [e["caption_source"] for e in posted] == ["langflow"]

    ledger = runtime.ledger.ledger
    assert [p.post_id for p in ledger.recent_posts(10)] == [outcome.post_id]
    assert ledger.recent_posts(1)[0].caption == caption
    assert ledger.count_on("posts", utc_day(stack)) == 1
    assert ledger.unsettled_intents() == []


@pytest.mark.parametrize(
    "backend", ["glif", "viewcomfy", "glimpse", "huggingface", "openai", "local"]
)
async def test_post_with_each_image_backend(agents: Agents, backend: str) -> None:
    """Each image backend, alone in images.order, makes the image of one published post."""
    stack = agents.stack
    me = await agents.new(images=[backend])
    outcome = await me.runtime.agent.post()

    assert outcome.ok, outcome.detail
    posts = stack.world.posts_by(me.agent_id)
    assert [p.id for p in posts] == [outcome.post_id]
    assert posts[0].image
    own = me.ledger.recent_posts(10)
    assert [(p.post_id, p.backend) for p in own] == [(outcome.post_id, backend)]
    if backend == "glif":
        assert "glif.app" in posts[0].caption  # Glif's attribution line
    day = utc_day(stack)
    # Only Glimpse's own generator (BYOK) spends Glimpse's generation quota.
    assert me.ledger.count_on("generation", day) == (1 if backend == "glimpse" else 0)
    assert me.ledger.count_on("posts", day) == 1
    assert me.ledger.unsettled_intents() == []


def test_cli_once_post_publishes_one_post(
    stack: SandboxStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`glimpse-agent once -c agent.toml --post` exits 0 having published exactly one post."""
    # `once` runs on the system clock; the emulators keep their simulated one, which is fine
    # for one ad-hoc post.
    agent_id, key = stack.world.create_agent(f"aurora_e2e_{next(_names)}")
    raw = stack.agent_toml(PERSONA_PATH, tmp_path / "state", api_key=key, images=["local"])
    path = tmp_path / "agent.toml"
    path.write_text(dumps(raw), encoding="utf-8")
    path.chmod(0o600)
    assert tomllib.loads(path.read_text(encoding="utf-8")) == raw
    # `once` sets these with setdefault; keep them out of the other tests' environment.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")

    assert cli.main(["once", "-c", str(path), "--post"]) == 0
    assert len(stack.world.posts_by(agent_id)) == 1


# ---------------------------------------------------------------------- crash safety


async def test_crash_between_post_and_settle_is_reconciled_at_restart(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after Glimpse accepted a post but before the ledger settled it leaves exactly
    one post: the restart finds it, records and counts it once, and never posts it again."""
    stack = agents.stack
    me = await agents.new()
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    slot = today_plan(plans, agents.persona, stack.clock.now()).posts[0]
    stack.clock.set(max(slot.at, stack.clock.now()))

    def crash(*_: Any) -> None:
        raise SimulatedCrash

    with monkeypatch.context() as patched:
        patched.setattr(settle_module, "settle_post", crash)
        with pytest.raises(SimulatedCrash):
            await me.runtime.agent.run_slot(slot)
    assert len(stack.world.posts_by(me.agent_id)) == 1  # Glimpse has it...
    assert len(me.ledger.unsettled_intents()) == 1  # ...the ledger only knows it meant to
    assert me.ledger.recent_posts(10) == []

    me = await agents.restart(me)  # startup() reconciles

    posts = stack.world.posts_by(me.agent_id)
    assert len(posts) == 1
    assert me.ledger.unsettled_intents() == []
    own = me.ledger.recent_posts(10)
    assert [(p.post_id, p.slot_id) for p in own] == [(posts[0].id, slot.slot_id)]
    assert me.ledger.count_on("posts", utc_day(stack)) == 1

    again = await me.runtime.agent.run_slot(slot)
    assert again.detail == "already done"
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    assert slot.slot_id not in {s.slot_id for p in plans for s in p.slots}
    assert len(stack.world.posts_by(me.agent_id)) == 1
    assert me.ledger.count_on("posts", utc_day(stack)) == 1


async def test_intents_left_open_by_the_previous_version_still_reconcile(agents: Agents) -> None:
    """Open intents as the previous version wrote them (plain payloads under the same keys)
    are settled at the next start: the post found on Glimpse is recorded with how it was made,
    the like is counted and remembered."""
    stack = agents.stack
    me = await agents.new()
    now = stack.clock.now()
    slot_id = f"{now.astimezone(ZoneInfo(agents.persona.timezone)).date()}/post/1"
    post_id = stack.world.post_as(me.agent_id, "harbour lights at dusk")
    target = relevant_posts(stack, 1)[0]
    me.ledger.begin_intent(
        "post",
        {
            "slot_id": slot_id,
            "caption": "harbour lights at dusk",
            "prompt": "harbour lights, long exposure",
            "topic": "harbours",
            "angle": "at blue hour",
            "backend": "openai",
            "model": "gpt-image-1",
            "cost_usd": 0.04,
        },
        now,
    )
    me.ledger.begin_intent(
        "like", {"target": target, "counterpart": "npc", "bucket": "reactions"}, now
    )

    me = await agents.restart(me)  # startup() reconciles

    assert me.ledger.unsettled_intents() == []
    [own] = me.ledger.recent_posts(10)
    assert (own.post_id, own.slot_id, own.prompt, own.topic, own.angle) == (
        post_id,
        slot_id,
        "harbour lights, long exposure",
        "harbours",
        "at blue hour",
    )
    assert (own.backend, own.model, own.cost_usd) == ("openai", "gpt-image-1", 0.04)
    assert me.ledger.slot_done(slot_id)
    assert me.ledger.has_engaged("like", target)
    assert me.ledger.count_on("reactions", utc_day(stack)) == 1


async def test_create_post_timeout_that_still_posts_is_settled_not_repeated(agents: Agents) -> None:
    """A create_post that times out while Glimpse still creates the post: no second post, and
    the open intent is settled by reconciliation (now or at the next start)."""
    stack = agents.stack
    me = await agents.new(glimpse_timeout=1)
    stack.world.faults.hang(1.5, path="/posts", method="POST")  # the server answers too late

    outcome = await me.runtime.agent.post("adhoc/timeout")

    assert not outcome.ok
    assert "timed out" in outcome.detail
    # The server finishes the request after the client gave up.
    assert await wait_until(lambda: len(stack.world.posts_by(me.agent_id)) == 1, 5)
    me = await agents.restart(me)

    posts = stack.world.posts_by(me.agent_id)
    assert len(posts) == 1
    assert me.ledger.unsettled_intents() == []
    assert [p.post_id for p in me.ledger.recent_posts(10)] == [posts[0].id]
    assert me.ledger.count_on("posts", utc_day(stack)) == 1
    again = await me.runtime.agent.run_slot(Slot("adhoc/timeout", "post", stack.clock.now()))
    assert again.detail == "already done"
    assert len(stack.world.posts_by(me.agent_id)) == 1


async def test_a_comment_whose_answer_is_lost_is_never_written_twice(agents: Agents) -> None:
    """A comment that times out while Glimpse still writes it counts as done at once: the
    sessions that follow in the same process never comment on that post again."""
    stack = agents.stack
    me = await agents.new(glimpse_timeout=1)
    relevant_posts(stack, 6)
    stack.world.faults.hang(1.5, path="/comment", method="POST")  # written, answered too late

    with capture_logs() as logs:
        await me.runtime.agent.engage()
    assert await wait_until(lambda: len(stack.world.comments_by(me.agent_id)) >= 1, 5)
    lost = stack.world.comments_by(me.agent_id)[0].post_id
    assert any(e["event"] == "action_failed" and e["bucket"] == "comments" for e in logs)
    for _ in range(3):
        stack.clock.advance(timedelta(minutes=90))
        relevant_posts(stack, 2)
        await me.runtime.agent.engage()

    mine = stack.world.comments_by(me.agent_id)
    assert len(mine) > 1  # it went on commenting...
    assert [c.post_id for c in mine].count(lost) == 1  # ...but never on that post again
    assert me.ledger.has_engaged("comment", lost)
    assert me.ledger.unsettled_intents() == []


def post_slot(agents: Agents) -> Slot:
    """A post slot of today's local day (in aurora's active hours at 10:00 UTC), due now."""
    now = agents.stack.clock.now()
    local_day = now.astimezone(ZoneInfo(agents.persona.timezone)).date()
    return Slot(f"{local_day}/post/1", "post", now)


async def test_a_post_no_backend_could_draw_is_tried_again_later(agents: Agents) -> None:
    """Every image backend down at the slot: no post, the slot stays open and runs again 20
    minutes later; the backend is back by then and the day keeps its post, exactly one."""
    stack = agents.stack
    me = await agents.new(images=["openai"])
    slot = post_slot(agents)
    stack.images.faults.always("status", status=503)

    first = await me.runtime.agent.run_slot(slot)

    assert not first.ok and "image failed" in first.detail
    assert first.retry_at == stack.clock.now() + timedelta(minutes=20)
    assert not me.ledger.slot_done(slot.slot_id)
    stack.images.faults.clear()
    stack.clock.set(first.retry_at)
    second = await me.runtime.agent.run_slot(slot)
    assert second.ok and second.retry_at is None
    assert [p.id for p in stack.world.posts_by(me.agent_id)] == [second.post_id]
    assert me.ledger.slot_done(slot.slot_id)


async def test_a_planned_retry_survives_a_restart(agents: Agents) -> None:
    """A restart while a failed post waits for its retry: the new process plans the slot at
    the retry time (not as missed), and the post goes out then."""
    stack = agents.stack
    me = await agents.new(images=["openai"])
    slot = post_slot(agents)
    day_key = slot.slot_id.split("/")[0]
    stack.images.faults.always("status", status=503)
    first = await me.runtime.agent.run_slot(slot)
    assert first.retry_at is not None

    me = await agents.restart(me)
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    again = [s for p in plans for s in p.slots if s.slot_id == slot.slot_id]
    assert [s.at for s in again] == [first.retry_at]
    assert me.ledger.planned_retries(day_key) == {slot.slot_id: (first.retry_at, 1)}
    stack.images.faults.clear()
    stack.clock.set(first.retry_at)
    assert (await me.runtime.agent.run_slot(again[0])).ok
    assert len(stack.world.posts_by(me.agent_id)) == 1
    assert me.ledger.planned_retries(day_key) == {}
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    assert slot.slot_id not in {s.slot_id for p in plans for s in p.slots}


async def test_a_failing_post_is_placed_again_until_the_window_has_no_room(agents: Agents) -> None:
    """A post that keeps failing for a passing reason is placed again every 20 minutes, across
    restarts (the count of placements survives them), until no time is left in the active
    window (23:30 Paris, less half the post gap); then the slot ends with one
    ``slot_given_up`` that says why, and is done."""
    stack = agents.stack
    stack.clock.set(stack.clock.now().replace(hour=20, minute=0))  # 21:00 in Paris (CET)
    me = await agents.new(images=["openai"])
    slot = post_slot(agents)
    day_key = slot.slot_id.split("/")[0]
    stack.images.faults.always("status", status=503)
    placements = []
    with capture_logs() as logs:
        for _ in range(10):
            outcome = await me.runtime.agent.run_slot(slot)
            if outcome.retry_at is None:
                break
            placements.append(me.ledger.planned_retries(day_key)[slot.slot_id][1])
            stack.clock.set(outcome.retry_at)
            me = await agents.restart(me)
    # 20:20, 20:40, 21:00, 21:20, 21:40 UTC fit; 22:00 is within 45 minutes of the end.
    assert placements == [1, 2, 3, 4, 5]
    assert me.ledger.slot_done(slot.slot_id)
    ended = [e for e in logs if e["event"] in ("slot_posted", "slot_made_up", "slot_given_up")]
    assert [e["event"] for e in ended] == ["slot_given_up"]
    assert "no room left in the active window" in ended[0]["reason"]
    assert (await me.runtime.agent.run_slot(slot)).detail == "already done"
    assert stack.world.posts_by(me.agent_id) == []


async def test_no_retry_past_the_end_of_the_active_window(agents: Agents) -> None:
    """A failure at 23:20 in Paris: 20 minutes later the window (until 23:30) is closed, so
    the slot is closed now rather than posting at an hour the persona is asleep."""
    stack = agents.stack
    stack.clock.set(stack.clock.now().replace(hour=22, minute=20))  # 23:20 in Paris (CET)
    me = await agents.new(images=["openai"])
    slot = post_slot(agents)
    stack.images.faults.always("status", status=503)
    outcome = await me.runtime.agent.run_slot(slot)
    assert not outcome.ok and outcome.retry_at is None
    assert me.ledger.slot_done(slot.slot_id)


async def test_a_post_that_may_have_gone_out_is_never_retried_blindly(agents: Agents) -> None:
    """create_post timed out (Glimpse may have posted): the slot comes back only after the
    request's deadline plus the margin, and then a look decides: the post is there, so the
    slot is done with it and nothing is posted again."""
    stack = agents.stack
    me = await agents.new(glimpse_timeout=1)
    slot = post_slot(agents)
    stack.world.faults.hang(1.5, path="/posts", method="POST")
    sent = stack.clock.now()
    outcome = await me.runtime.agent.run_slot(slot)
    assert not outcome.ok and outcome.retry_at is not None
    assert outcome.retry_at >= sent + timedelta(seconds=1) + CERTAINTY_MARGIN
    assert await wait_until(lambda: len(stack.world.posts_by(me.agent_id)) == 1, 5)

    stack.clock.set(outcome.retry_at)
    before = routes(stack)
    again = await me.runtime.agent.run_slot(slot)

    assert again.ok and again.detail == "found on Glimpse"
    assert CREATE_POST_ROUTE not in route_delta(stack, before)
    [post] = stack.world.posts_by(me.agent_id)
    assert again.post_id == post.id
    assert me.ledger.slot_done(slot.slot_id) and me.ledger.unsettled_intents() == []
    assert me.ledger.count_on("posts", utc_day(stack)) == 1


async def test_a_429_on_create_post_retries_after_the_wait(agents: Agents) -> None:
    """Glimpse answers the post with a 429: surely not posted, so the slot comes back once
    the wait has passed, and then posts."""
    stack = agents.stack
    me = await agents.new()
    slot = post_slot(agents)
    stack.world.faults.fail(429, path="/posts", method="POST")
    first = await me.runtime.agent.run_slot(slot)
    assert not first.ok and first.retry_at is not None and first.retry_at > stack.clock.now()
    assert stack.world.posts_by(me.agent_id) == [] and me.ledger.unsettled_intents() == []
    stack.clock.set(first.retry_at)
    assert (await me.runtime.agent.run_slot(slot)).ok
    assert len(stack.world.posts_by(me.agent_id)) == 1


async def test_restart_mid_day_keeps_the_plan(agents: Agents) -> None:
    """A restart mid-day re-plans the same slots, drops the done post slot, and the day ends
    with exactly the planned number of posts."""
    stack, persona = agents.stack, agents.persona
    me = await agents.new()
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    first = today_plan(plans, persona, stack.clock.now())
    day_key = first.local_day.isoformat()
    full_before = me.ledger.load_plan(day_key)
    planned_posts = first.posts
    assert len(planned_posts) >= 2
    stack.clock.set(max(planned_posts[0].at, stack.clock.now()))
    assert (await me.runtime.agent.run_slot(planned_posts[0])).ok

    me = await agents.restart(me)
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    second = today_plan(plans, persona, stack.clock.now())

    assert me.ledger.load_plan(day_key) == full_before  # same ids, same times
    assert planned_posts[0].slot_id not in {s.slot_id for s in second.slots}
    assert [(s.slot_id, s.at) for s in second.posts] == [
        (s.slot_id, s.at) for s in planned_posts[1:]
    ]
    for slot in second.posts:
        stack.clock.set(max(slot.at, stack.clock.now()))
        assert (await me.runtime.agent.run_slot(slot)).ok
    assert len(stack.world.posts_by(me.agent_id)) == len(planned_posts)
    assert me.ledger.count_on("posts", utc_day(stack)) == len(planned_posts)
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    assert today_plan(plans, persona, stack.clock.now()).posts == ()


# ---------------------------------------------------------------------- rate limits


async def test_429_on_likes_blocks_reactions_until_retry_after(agents: Agents) -> None:
    """A 429 with Retry-After on a like ends the session's liking at once and blocks the
    reactions bucket in the ledger until exactly then."""
    stack = agents.stack
    me = await agents.new()
    relevant_posts(stack, 6)
    t0 = stack.clock.now()
    # The agent's reactions were all spent elsewhere half an hour ago: Glimpse says 429,
    # Retry-After 1800 s (when the oldest of them slides out of the hour).
    with stack.world.lock:
        for _ in range(60):
            stack.world.limiter.record(me.agent_id, "reactions", t0 - timedelta(minutes=30))
    before = routes(stack)

    outcome = await me.runtime.agent.engage()

    assert route_delta(stack, before).get(LIKE_ROUTE) == 1  # one try, no retry loop
    assert outcome.counts["like"] == 0
    assert stack.world.stats.rate_limited_count(me.agent_id, "reactions") == 1
    assert stack.world.likes_by(me.agent_id) == []
    until = t0 + timedelta(seconds=1800)
    assert me.ledger.usage("reactions").blocked_until == until
    ledger, persona = me.ledger, agents.persona
    assert ledger.remaining("reactions", t0, persona) == 0
    assert ledger.remaining("reactions", until - timedelta(seconds=1), persona) == 0
    assert ledger.remaining("reactions", until + timedelta(seconds=1), persona) > 0
    assert me.ledger.unsettled_intents() == []

    # A second session before then does not even try.
    before = routes(stack)
    stack.clock.advance(timedelta(minutes=10))
    await me.runtime.agent.engage()
    assert LIKE_ROUTE not in route_delta(stack, before)


async def test_server_headers_tighten_the_ledger_and_avoid_429(agents: Agents) -> None:
    """When Glimpse's X-RateLimit headers say fewer likes are left than the ledger thinks, the
    ledger follows the server and the session stops liking before any 429."""
    stack, persona = agents.stack, agents.persona
    me = await agents.new()
    # The same account liked 57 posts from somewhere else (another process, same key).
    elsewhere = [
        stack.world.post_as(stack.world.npc_ids[0], f"grey square no. {i}") for i in range(57)
    ]
    async with GlimpseClient(stack.glimpse_url, me.key, clock=stack.clock) as other:
        for post_id in elsewhere:
            await other.like(post_id)
    relevant_posts(stack, 9)
    now = stack.clock.now()
    assert me.ledger.remaining("reactions", now, persona) == persona.engagement.likes_per_day

    outcome = await me.runtime.agent.engage()

    assert stack.world.stats.rate_limited_count(me.agent_id) == 0
    server_left = stack.world.limiter.state(me.agent_id, "reactions", now).headline.remaining
    assert server_left == 0
    assert outcome.counts["like"] == 3
    assert len(stack.world.likes_by(me.agent_id)) == 57 + 3
    assert me.ledger.remaining("reactions", now, persona) == server_left
    assert me.ledger.usage("reactions").blocked_until is None


# ---------------------------------------------------------------------- engagement


async def test_engagement_rules_across_two_sessions(agents: Agents) -> None:
    """Never itself, never twice across sessions, follows back, and answers one commenter at
    most replies_per_counterpart_per_day times however often they comment."""
    stack, persona = agents.stack, agents.persona
    me = await agents.new()
    assert (await me.runtime.agent.post()).ok
    own_post = stack.world.posts_by(me.agent_id)[0].id
    chatty, follower = stack.world.npc_ids[0], new_follower(stack, me.agent_id)
    for i in range(10):
        stack.world.comment_as(chatty, own_post, f"Lovely sky, part {i}!")
    stack.world.follow_as(follower, me.agent_id)
    relevant_posts(stack, 6)
    before = routes(stack)

    first = await me.runtime.agent.engage()
    stack.clock.advance(timedelta(minutes=30))
    relevant_posts(stack, 3)
    second = await me.runtime.agent.engage()

    world = stack.world
    own_ids = {p.id for p in world.posts_by(me.agent_id)}
    likes = world.likes_by(me.agent_id)
    follows = world.follows_by(me.agent_id)
    comments = world.comments_by(me.agent_id)
    assert first.counts["like"] > 0 and first.counts["reply"] > 0
    # Never itself.
    assert not own_ids & set(likes)
    assert me.agent_id not in follows
    # Never twice: every attempt was new (Glimpse would answer a repeat with a conflict).
    delta = route_delta(stack, before)
    assert len(likes) == len(set(likes)) == delta.get(LIKE_ROUTE, 0)
    assert len(follows) == len(set(follows)) == delta.get(FOLLOW_ROUTE, 0)
    assert len(comments) == delta.get(COMMENT_ROUTE, 0)
    on_others = [c.post_id for c in comments if c.post_id not in own_ids]
    assert len(on_others) == len(set(on_others))
    # Follows back.
    assert follower in follows
    # Replies: at most the cap per counterpart per UTC day, even to ten comments.
    cap = persona.engagement.replies_per_counterpart_per_day
    replies = me.ledger.replies_by_counterpart(utc_day(stack))
    assert replies.get(chatty) == cap
    assert all(n <= cap for n in replies.values())
    assert sum(1 for c in comments if c.post_id in own_ids) == sum(replies.values())
    assert first.counts["reply"] + second.counts["reply"] == sum(replies.values())
    assert me.ledger.unsettled_intents() == []


async def test_dry_run_writes_nothing(agents: Agents) -> None:
    """With dry_run, post() and engage() send no write request and leave no intent open."""
    stack = agents.stack
    me = await agents.new(dry_run=True)
    stack.world.follow_as(new_follower(stack, me.agent_id), me.agent_id)
    relevant_posts(stack, 6)
    before = routes(stack)

    posted = await me.runtime.agent.post()
    engaged = await me.runtime.agent.engage()
    await me.runtime.agent.heartbeat()

    assert posted.ok and posted.detail == "dry run"
    assert sum(engaged.counts.values()) > 0  # it did decide things...
    assert not WRITE_ROUTES & set(route_delta(stack, before))  # ...and sent none of them
    world = stack.world
    assert world.posts_by(me.agent_id) == []
    assert world.likes_by(me.agent_id) == []
    assert world.comments_by(me.agent_id) == []
    assert world.follows_by(me.agent_id) == []
    assert me.ledger.unsettled_intents() == []
    assert me.ledger.recent_posts(10) == []
    assert me.ledger.count_on("posts", utc_day(stack)) == 0


async def test_hostile_comment_never_leaks_a_key_or_a_link(agents: Agents) -> None:
    """An obedient model fed a prompt injection on our post: nothing we publish contains our
    Glimpse key, a model key or a link."""
    stack = agents.stack
    me = await agents.new()
    assert (await me.runtime.agent.post()).ok
    own_post = stack.world.posts_by(me.agent_id)[0].id
    stack.chat.responder = obedient_responder
    hostile = [t for t in HOSTILE_TEXTS if "key" in t.lower() or "http" in t]
    npcs = stack.world.npc_ids
    for i, text in enumerate(hostile):
        stack.world.comment_as(npcs[i % len(npcs)], own_post, text)
    calls_before, replies_before = len(stack.chat.calls), len(stack.chat.replies)

    outcome = await me.runtime.agent.engage()

    assert outcome.counts["skipped"] > 0  # texts the filter refused twice are not sent
    # The model was asked, with the hostile text, and obeyed.
    prompts = "\n".join(stack.chat.prompts())
    assert any(text in prompts for text in hostile)
    assert len(stack.chat.calls) > calls_before
    assert any(CHAT_KEY in r for r in stack.chat.replies[replies_before:])
    secrets = {me.key, CHAT_KEY, LANGFLOW_KEY}
    published = [c.content for c in stack.world.comments_by(me.agent_id)]
    published += [p.caption for p in stack.world.posts_by(me.agent_id)]
    for text in published:
        assert not any(s in text for s in secrets), text
        assert "http" not in text.lower(), text
    assert me.ledger.unsettled_intents() == []


@pytest.mark.parametrize("images", [["glimpse"], ["glimpse", "local"]])
async def test_dry_run_sends_no_write_even_through_glimpses_image_generator(
    agents: Agents, images: list[str]
) -> None:
    """With dry_run and Glimpse's own (BYOK) generator, not even the settings PUT or the
    generation POST reaches Glimpse; the run leaves no slot marked done and spends nothing."""
    stack = agents.stack
    me = await agents.new(images=images, dry_run=True)
    stack.world.follow_as(new_follower(stack, me.agent_id), me.agent_id)
    relevant_posts(stack, 6)
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    slots = [s for p in plans for s in p.slots]
    before = routes(stack)

    posted = await me.runtime.agent.post()
    for slot in slots[:3]:
        await me.runtime.agent.run_slot(slot)
    engaged = await me.runtime.agent.engage()
    await me.runtime.agent.heartbeat()

    assert posted.ok and posted.detail == "dry run"
    assert sum(engaged.counts.values()) > 0
    sent = route_delta(stack, before)
    assert not WRITE_ROUTES & set(sent), sent
    assert "POST /heartbeat" not in sent
    day = utc_day(stack)
    for bucket in ("posts", "generation", "reactions", "comments", "follows"):
        assert me.ledger.count_on(bucket, day) == 0, bucket
    assert me.ledger.spent_on(day) == 0
    assert [s.slot_id for s in slots if me.ledger.slot_done(s.slot_id)] == []
    assert me.ledger.unsettled_intents() == []


def _slow_answers(
    monkeypatch: pytest.MonkeyPatch, obj: Any, name: str, stack: SandboxStack
) -> None:
    """``obj.name`` answers, then two seconds pass before the caller goes on (network latency
    and the caller's own work, on the simulated clock)."""
    original = getattr(obj, name)

    async def slow(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        stack.clock.advance(timedelta(seconds=2))
        return result

    monkeypatch.setattr(obj, name, slow)


async def test_a_post_is_not_counted_twice_against_the_servers_headers(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's X-RateLimit-Remaining after a post already includes that post: the ledger
    must not subtract it once more because the answer took a moment."""
    stack = agents.stack
    me = await agents.new(images=["glimpse"])
    _slow_answers(monkeypatch, me.runtime.agent.router, "generate", stack)
    _slow_answers(monkeypatch, me.runtime.glimpse, "create_post", stack)

    assert (await me.runtime.agent.post()).ok
    now = stack.clock.now()
    six_a_day = agents.persona.model_copy(update={"posts_per_day": 6})
    assert me.ledger.usage("posts").server is not None
    assert me.ledger.remaining("posts", now, six_a_day) == 5
    assert me.ledger.usage("generation").server is not None
    assert me.ledger.remaining("generation", now, six_a_day) == 5


# ---------------------------------------------------------------------- never twice, never lost


async def test_a_slow_post_through_a_restart_is_never_posted_twice(agents: Agents) -> None:
    """The daemon dies while Glimpse is still applying a slow POST /posts; the next start,
    three minutes later, does not find the post yet. The intent stays open (Glimpse may still
    be applying it), no other post is made meanwhile — not even an image generated — and once
    the certainty point has passed the look finds the post: one post, recorded once."""
    stack = agents.stack
    me = await agents.new(glimpse_timeout=1, images=["openai"])
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    first, second = today_plan(plans, agents.persona, stack.clock.now()).posts[:2]
    stack.clock.set(max(first.at, stack.clock.now()))
    # Applied six real seconds after it arrived, long after the client gave up (one second).
    stack.world.faults.hang(6, path="/posts", method="POST")
    outcome = await me.runtime.agent.run_slot(first)
    assert not outcome.ok and outcome.retry_at is not None

    stack.clock.advance(timedelta(minutes=3))
    me = await agents.restart(me)  # start-up reconciles: nothing on Glimpse yet
    assert stack.world.posts_by(me.agent_id) == []
    assert [i.kind for i in me.ledger.unsettled_intents()] == ["post"]

    # Another slot runs meanwhile: it waits for the certainty point, spending nothing.
    generated = len(stack.images.requests)
    before = routes(stack)
    stack.clock.advance(timedelta(minutes=1))
    waiting = await me.runtime.agent.run_slot(second)
    assert not waiting.ok and "may still be going out" in waiting.detail
    assert waiting.retry_at is not None and waiting.retry_at >= outcome.retry_at
    assert CREATE_POST_ROUTE not in route_delta(stack, before)
    assert len(stack.images.requests) == generated

    assert await wait_until(lambda: len(stack.world.posts_by(me.agent_id)) == 1, 10)
    stack.clock.set(outcome.retry_at)
    me = await agents.restart(me)  # now the look is fresh and past the certainty point
    [post] = stack.world.posts_by(me.agent_id)
    assert me.ledger.unsettled_intents() == []
    assert [(p.post_id, p.slot_id) for p in me.ledger.recent_posts(10)] == [
        (post.id, first.slot_id)
    ]
    assert (await me.runtime.agent.run_slot(first)).detail == "already done"
    stack.clock.set(max(waiting.retry_at, second.at))
    assert (await me.runtime.agent.run_slot(second)).ok
    assert len(stack.world.posts_by(me.agent_id)) == 2
    assert me.ledger.count_on("posts", utc_day(stack)) == 2


async def test_a_post_certainly_not_made_is_posted_then_with_the_same_image(
    agents: Agents,
) -> None:
    """Glimpse answered the post with a 503: it may or may not have it. After the certainty
    point a look does not find it, so the intent is closed as not posted and the slot posts —
    once, with the image already made (the image service sees one generation, not two)."""
    stack = agents.stack
    me = await agents.new(images=["openai"])
    slot = post_slot(agents)
    generated = len(stack.images.requests)
    stack.world.faults.fail(503, path="/posts", method="POST")
    with capture_logs() as logs:
        first = await me.runtime.agent.run_slot(slot)
        assert not first.ok and first.retry_at is not None
        timeout = timedelta(seconds=me.loaded.config.glimpse.timeout)
        assert first.retry_at >= stack.clock.now() + timeout + CERTAINTY_MARGIN - timedelta(
            seconds=5
        )
        assert len(me.ledger.unsettled_intents()) == 1
        stack.clock.set(first.retry_at)
        second = await me.runtime.agent.run_slot(slot)

    assert second.ok, second.detail
    assert [p.id for p in stack.world.posts_by(me.agent_id)] == [second.post_id]
    assert len(stack.images.requests) == generated + 1
    events = [e["event"] for e in logs]
    assert "reconciled_post_absent" in events and "kept_image_used" in events
    ended = [e for e in logs if e["event"] in ("slot_posted", "slot_made_up", "slot_given_up")]
    assert [(e["event"], e["post_id"]) for e in ended] == [("slot_made_up", second.post_id)]
    assert me.ledger.unsettled_intents() == []
    kept = me.loaded.config.state_dir / "kept_images"
    assert not kept.exists() or list(kept.iterdir()) == []


async def test_an_image_made_before_a_crash_is_posted_by_the_next_start(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between generating and posting: the image is in the state dir (0600), and the
    next start posts it without generating again."""
    stack = agents.stack
    me = await agents.new(images=["openai"])
    generated = len(stack.images.requests)

    async def crash(**_: Any) -> Any:
        raise SimulatedCrash

    with monkeypatch.context() as patched:
        patched.setattr(me.runtime.glimpse, "create_post", crash)
        with pytest.raises(SimulatedCrash):
            await me.runtime.agent.post()
    kept = list((me.loaded.config.state_dir / "kept_images").iterdir())
    assert kept and all(p.stat().st_mode & 0o777 == 0o600 for p in kept)

    me = await agents.restart(me)
    # The crash left the post's intent open: it waits for its certainty point (nothing was
    # sent, so the look then finds nothing) and posts the kept image.
    stack.clock.advance(timedelta(minutes=15))
    outcome = await me.runtime.agent.post()

    assert outcome.ok, outcome.detail
    assert len(stack.images.requests) == generated + 1
    assert [p.id for p in stack.world.posts_by(me.agent_id)] == [outcome.post_id]


async def test_a_daily_429_on_generation_blocks_until_its_reset(agents: Agents) -> None:
    """Glimpse's generator says the day's six are used (429 until midnight UTC): the block is
    in the ledger until then, the slot is not tried again into it (its reset is past the
    window: it ends, saying why), and a later slot sends no generation request either."""
    stack = agents.stack
    me = await agents.new(images=["glimpse"])
    now = stack.clock.now()
    with stack.world.lock:
        for _ in range(6):  # the day's six spent elsewhere, an hour ago
            stack.world.limiter.record(me.agent_id, "generation", now - timedelta(hours=1))
    midnight = datetime.combine(now.date() + timedelta(days=1), dtime(0), tzinfo=UTC)
    slot = post_slot(agents)
    before = routes(stack)
    with capture_logs() as logs:
        outcome = await me.runtime.agent.run_slot(slot)

    assert not outcome.ok and outcome.retry_at is None
    assert route_delta(stack, before).get("POST /images/generate") == 1
    blocked = me.ledger.usage("generation").blocked_until
    assert blocked is not None and abs(blocked - midnight) <= timedelta(seconds=2)
    [ended] = [e for e in logs if e["event"] == "slot_given_up"]
    assert "no room left in the active window" in ended["reason"]

    stack.clock.advance(timedelta(minutes=20))
    before = routes(stack)
    later = await me.runtime.agent.post()
    assert not later.ok and later.detail == "quota used up"
    assert "POST /images/generate" not in route_delta(stack, before)


async def test_a_generation_whose_answer_was_lost_counts_as_spent(agents: Agents) -> None:
    """Glimpse's generator made the image but the answer never came back: that generation
    is one of the day's six in the ledger, although no image reached us."""
    stack = agents.stack
    me = await agents.new(images=["glimpse"], glimpse_timeout=1)
    stack.world.faults.hang(1.5, path="/images/generate", method="POST")
    outcome = await me.runtime.agent.post()
    assert not outcome.ok and "image failed" in outcome.detail
    assert me.ledger.count_on("generation", utc_day(stack)) == 1
    assert stack.world.posts_by(me.agent_id) == []


async def test_a_kill_while_glimpse_generates_still_counts_the_generation(
    agents: Agents,
) -> None:
    """The process dies while Glimpse's generator is making an image (the server counts it):
    the intent written before the request makes the next start count that generation, so the
    day's six are never passed with a 429; a finished generation leaves no open intent."""
    stack = agents.stack
    me = await agents.new(images=["glimpse"], glimpse_timeout=60)
    # Hung long enough to be cut short; the shared stack's faults are never released here
    # (that would end every later test's hangs at once): the server finishes it on its own.
    stack.world.faults.hang(5, path="/images/generate", method="POST")
    task = asyncio.create_task(me.runtime.agent.post())
    assert await _until(lambda: stack.world.faults.pending == 0)  # the request is in
    task.cancel()  # the kill: nothing after the request went out was written
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [i.kind for i in me.ledger.unsettled_intents()] == ["generation"]
    assert me.ledger.count_on("generation", utc_day(stack)) == 0

    me = await agents.restart(me)
    assert me.ledger.unsettled_intents() == []
    assert me.ledger.count_on("generation", utc_day(stack)) == 1
    outcome = await me.runtime.agent.post()
    assert outcome.ok, outcome
    assert me.ledger.count_on("generation", utc_day(stack)) == 2
    assert me.ledger.unsettled_intents() == []


async def test_a_generation_glimpse_never_made_is_not_counted(agents: Agents) -> None:
    """Glimpse's generator refusing with a 500 (nothing made) and the next backend drawing:
    the generation intent is closed as not spent."""
    stack = agents.stack
    me = await agents.new(images=["glimpse", "local"])
    stack.world.faults.fail(500, times=10, path="/images/generate")
    outcome = await me.runtime.agent.post()
    assert outcome.ok and me.ledger.recent_posts(1)[0].backend == "local", outcome
    assert me.ledger.count_on("generation", utc_day(stack)) == 0
    assert me.ledger.unsettled_intents() == []


async def test_a_plan_made_while_a_post_runs_neither_gives_it_up_nor_runs_it_again(
    agents: Agents,
) -> None:
    """A re-plan (the midnight one, say) while a post slot's request is still out, long past
    the slot's time: the slot is neither given up nor planned again, and ends posted."""
    stack = agents.stack
    me = await agents.new()
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    slot = next(s for plan in plans for s in plan.slots if s.kind == "post")
    stack.clock.set(slot.at)
    stack.world.faults.hang(3, path="/posts", method="POST")  # well inside the 10 s timeout
    task = asyncio.create_task(me.runtime.agent.run_slot(slot))
    assert await _until(lambda: stack.world.faults.pending == 0)  # the post is out
    stack.clock.advance(timedelta(hours=2))  # far past the misfire grace
    with capture_logs() as logs:
        plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    assert slot.slot_id not in {s.slot_id for plan in plans for s in plan.slots}
    assert [e for e in logs if e["event"] == "slot_given_up"] == []
    assert not me.ledger.slot_done(slot.slot_id)
    with capture_logs() as logs:
        outcome = await task
    assert outcome.ok, outcome
    ended = [e["event"] for e in logs if e["event"].startswith("slot_")]
    assert len(ended) == 1 and ended[0] in ("slot_posted", "slot_made_up"), ended
    assert len(stack.world.posts_by(me.agent_id)) == 1


async def _until(predicate: Callable[[], bool]) -> bool:
    for _ in range(1000):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_two_hour_outage_mid_window_still_makes_every_planned_post(
    agents: Agents,
) -> None:
    """A simulated day with Glimpse answering 503 to everything for two hours in the middle
    of the window (7 hours of it left when the outage starts): the post that fell in the
    outage is made up after it, spaced like the plan, and every planned post is made that day,
    each once."""
    stack, persona = agents.stack, agents.persona
    day = stack.clock.now().date() + timedelta(days=1)
    stack.clock.set(datetime.combine(day, dtime(0), tzinfo=UTC))
    me = await agents.new()
    _, window_end = active_window(persona, day)
    outage = (window_end - timedelta(hours=7), window_end - timedelta(hours=5))

    def weather(at: datetime) -> None:
        down = outage[0] <= at < outage[1]
        if down and not stack.world.faults.pending:
            stack.world.faults.fail(503, times=1_000_000)
        elif not down and stack.world.faults.pending:
            stack.world.faults.clear()

    with capture_logs() as logs:
        result = await Simulation([me.runtime.agent], stack.clock, on_advance=weather).run(1)

    summary = result.days[persona.name][day]
    posts = stack.world.posts_by(me.agent_id)
    assert summary.planned_posts == persona.posts_per_day
    assert summary.posts == len(posts) == persona.posts_per_day
    assert len({p.caption for p in posts}) == len(posts)
    times = sorted(p.created_at for p in posts if p.created_at is not None)
    gap = timedelta(minutes=persona.min_post_gap_minutes)
    assert all(b - a >= gap for a, b in itertools.pairwise(times))
    # The outage cost a post its planned time, not the post.
    made_up = [e for e in logs if e["event"] == "slot_made_up"]
    assert made_up and all(outage[1] <= t for t in times if t >= outage[0])
    ended = [e for e in logs if e["event"] in ("slot_posted", "slot_made_up", "slot_given_up")]
    assert sorted(e["job"] for e in ended) == sorted({e["job"] for e in ended})
    assert [e for e in ended if e["event"] == "slot_given_up"] == []


async def test_spent_generations_skip_glimpses_generator_not_the_post(agents: Agents) -> None:
    """With another backend after Glimpse's generator, the day's six spent generations only
    take the generator out of the chain: the post is made by the next backend, without a
    request Glimpse would refuse with a 429, and the day's plan keeps all its posts."""
    stack = agents.stack
    me = await agents.new(images=["glimpse", "local"])
    now = stack.clock.now()
    with stack.world.lock:
        for _ in range(6):
            stack.world.limiter.record(me.agent_id, "generation", now - timedelta(hours=1))
    for _ in range(6):
        me.ledger.record_action("generation", now - timedelta(hours=1))
    before = routes(stack)
    outcome = await me.runtime.agent.post()
    assert outcome.ok, outcome
    assert "POST /images/generate" not in route_delta(stack, before)
    [post] = stack.world.posts_by(me.agent_id)
    assert me.ledger.recent_posts(1)[0].backend == "local"
    assert post.id == me.ledger.recent_posts(1)[0].post_id
    plans, _ = await me.runtime.agent.plan_day(stack.clock.now())
    persona = me.runtime.agent.persona
    saved = [me.ledger.load_plan(p.local_day.isoformat()) for p in plans]
    planned = [sum(1 for s in plan["slots"] if s["kind"] == "post") for plan in saved if plan]
    # The post just made counts against the persona's own cap; judged by the spent generation
    # bucket instead, the plan would hold no post at all.
    assert planned and max(planned) == persona.posts_per_day - 1, planned
