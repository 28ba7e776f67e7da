"""The sandbox's caption flow: the Langflow emulator with a model behind its Prompt, met by the
real captioner over HTTP. Its captions read like an artist's, carry the topic and hashtags the
agent sends, vary from post to post, honour the voice's register without quoting it, and pass
the safety filter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from glimpse_agent.clock import utc
from glimpse_agent.config import LangflowSection, SafetySection, load_persona
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.stack import CAPTION_FLOW, LANGFLOW_KEY, SandboxStack
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner, SafetyFilter

PERSONAS = Path(__file__).resolve().parents[1] / "personas"
ANGLES = [
    "extreme close-up, at first light, serene",
    "wide establishing shot, at golden hour, melancholic",
    "low-angle view, at blue hour, playful",
    "bird's-eye view, under a storm sky, eerie",
    "symmetrical frame, at high noon, triumphant",
    "off-centre silhouette, in the dead of night, nostalgic",
    "mirrored in still water, at first light, eerie",
    "seen through a rain-streaked window, at golden hour, serene",
]


@pytest.fixture(scope="module")
def stack() -> Iterator[SandboxStack]:
    with SandboxStack(start=utc(2026, 3, 2)) as running:
        yield running


def captioner(stack: SandboxStack, persona: Persona, http: httpx.AsyncClient) -> LangflowCaptioner:
    """The captioner exactly as ``glimpse-agent sandbox`` configures it."""
    raw = stack.agent_toml(PERSONAS / f"{persona.name}.toml", Path("unused"), api_key="k")
    section = LangflowSection(**raw["captions"]["langflow"])
    assert section.flow == CAPTION_FLOW
    return LangflowCaptioner(section, persona, http=http)


def request(persona: Persona, angle: str, topic: str | None = None) -> CaptionRequest:
    topic = topic or persona.topics[0]
    return CaptionRequest(topic, f"{topic}, {angle}, {persona.art_style}", persona.hashtags[:2])


async def captions(
    stack: SandboxStack, persona: Persona, http: httpx.AsyncClient, topic: str | None = None
) -> list[str]:
    writer = captioner(stack, persona, http)
    return [await writer.write_caption(request(persona, a, topic), 0) for a in ANGLES]


@pytest.mark.parametrize("name", ["aurora", "kuro", "moss"])
async def test_captions_carry_topic_and_hashtags_never_the_voice_and_pass_the_filter(
    stack: SandboxStack, http: httpx.AsyncClient, name: str
) -> None:
    """Each sandbox persona's captions name the topic, end with the hashtags it sent, never
    paste the voice description or the art style, and the safety filter lets them through."""
    persona = load_persona(PERSONAS / f"{name}.toml")
    safety = SafetyFilter(SafetySection(), [LANGFLOW_KEY])
    for topic in persona.topics:
        for caption in await captions(stack, persona, http, topic):
            assert topic.lower() in caption.lower(), caption
            assert caption.endswith(" ".join(persona.hashtags[:2])), caption
            assert persona.voice.lower() not in caption.lower(), caption
            assert persona.art_style.lower() not in caption.lower(), caption
            assert "would say it" not in caption
            assert safety.check(caption, "caption").ok, caption


async def test_one_topic_gets_a_new_caption_each_time_and_a_rerun_repeats_them(
    stack: SandboxStack, http: httpx.AsyncClient
) -> None:
    """The same topic drawn again and again (new angles) never gets a caption it got before;
    a fresh sandbox (empty flow memory) answers the same requests with the same captions."""
    persona = load_persona(PERSONAS / "aurora.toml")
    session = captioner(stack, persona, http).session_id
    stack.langflow.memory.pop(session, None)
    first = await captions(stack, persona, http)
    assert len(set(first)) == len(ANGLES), first
    stack.langflow.memory.pop(session)
    assert await captions(stack, persona, http) == first


async def test_consecutive_posts_do_not_reuse_a_phrasing(
    stack: SandboxStack, http: httpx.AsyncClient
) -> None:
    """Seven posts in a row from one persona, each on its own topic, are seven phrasings
    (the flow remembers what it told this persona's session), not one pattern with new nouns."""
    persona = load_persona(PERSONAS / "kuro.toml")
    writer = captioner(stack, persona, http)
    stack.langflow.memory.pop(writer.session_id, None)
    topics = [*persona.topics, "empty taxi rank", "steam from a manhole", "a closed noodle bar"]
    phrasings = []
    for topic in topics:
        caption = await writer.write_caption(request(persona, ANGLES[0], topic), 0)
        phrasings.append(caption.replace(topic, "").rsplit(" #", 3)[0])
    assert len(set(phrasings)) == len(topics) == 7, phrasings


async def test_captions_follow_the_voices_register(
    stack: SandboxStack, http: httpx.AsyncClient
) -> None:
    """A terse lowercase voice that never exclaims gets short lowercase captions without '!';
    a chatty exclamation-prone one gets longer captions, some exclaiming."""
    kuro = load_persona(PERSONAS / "kuro.toml")
    aurora = load_persona(PERSONAS / "aurora.toml")
    terse = await captions(stack, kuro, http)
    chatty = await captions(stack, aurora, http)
    for caption in terse:
        text = caption.rsplit(" #", 1)[0]
        assert text == text.lower() and "!" not in caption, caption
    assert any("!" in c for c in chatty), chatty
    assert max(map(len, terse)) < min(map(len, chatty)) + 20


async def test_the_caption_is_the_flows_answer_to_the_tweaks(
    stack: SandboxStack, http: httpx.AsyncClient
) -> None:
    """What the flow wrote is what the emulator recorded for that run: the caption the agent
    gets is the model's answer to its tweaks (topic, hashtags), not a canned reply."""
    persona = load_persona(PERSONAS / "moss.toml")
    writer = captioner(stack, persona, http)
    text = await writer.write_caption(request(persona, ANGLES[0]), 0)
    run = stack.langflow.runs[-1]
    assert run.text == text
    tweaks = run.applied["tweaks"]["Prompt-capPr"]
    assert tweaks["topic"].lower() in text.lower()
    assert text.endswith(tweaks["hashtags"])
