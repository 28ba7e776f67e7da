"""Hostile content cannot make the agent publish a key, a link, an echo of instructions or a
persona switch — even through a model that obeys it — and no secret or config ever enters a
prompt sent to Langflow or the LLM."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from glimpse_agent.config import (
    AgentConfig,
    CaptionsSection,
    GlimpseSection,
    LangflowSection,
    LLMSection,
    SafetySection,
)
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import LangflowState, create_langflow_app
from glimpse_agent.sandbox.openai_chat import (
    ChatState,
    disguising_responder,
    obedient_responder,
    plausible_responder,
)
from glimpse_agent.sandbox.server import LoopbackServer
from glimpse_agent.writing import CaptionRequest, SafetyFilter, Writing, build_writing
from glimpse_agent.writing.safety import echoes
from glimpse_agent.writing.safety.text import visible

CORPUS: list[dict[str, str]] = json.loads(
    (Path(__file__).parent / "data" / "hostile_inputs.json").read_text(encoding="utf-8")
)
LLM_KEY = "sk-llm-SECRET-9f8e7d6c5b4a"
GLIMPSE_KEY = "glm_agent_SECRET_1a2b3c4d"
LANGFLOW_KEY = "lf-SECRET-key-77aa88bb"
EXTRA_SECRET = "viewcomfy-client-secret-31337"
SECRETS = [LLM_KEY, GLIMPSE_KEY, LANGFLOW_KEY, EXTRA_SECRET]
PERSONA = Persona(
    name="mira",
    display_name="Mira",
    voice="wistful",
    topics=["lighthouses"],
    art_style="watercolor",
    hashtags=["#aiart"],
)
_LINK = re.compile(r"https?://|www\.|\.example\b|\bdot (com|io)\b|bit\.ly", re.I)


@pytest.fixture
def chat_state() -> ChatState:
    return ChatState(api_key=LLM_KEY, responder=obedient_responder)


def writing_for(llm_url: str, langflow_url: str | None = None) -> Writing:
    langflow = (
        LangflowSection(
            base_url=langflow_url,
            flow="caption",
            api_key=LANGFLOW_KEY,
            tweak_map={"Prompt-capPr.voice": "persona.voice", "Prompt-capPr.topic": "post.topic"},
        )
        if langflow_url
        else None
    )
    config = AgentConfig(
        persona=Path("p.toml"),
        glimpse=GlimpseSection(base_url="http://127.0.0.1:9/api/v1", api_key=GLIMPSE_KEY),
        llm=LLMSection(base_url=llm_url, api_key=LLM_KEY, model="obedient-1"),
        captions=CaptionsSection(
            order=["langflow", "llm", "template"] if langflow else None, langflow=langflow
        ),
        safety=SafetySection(max_hashtags=5),
    )
    return build_writing(config, PERSONA, secrets=[EXTRA_SECRET], seed=11)


def test_corpus_is_large_and_varied() -> None:
    """At least 40 hostile inputs, as captions and as comments."""
    assert len(CORPUS) >= 40
    assert {e["kind"] for e in CORPUS} == {"caption", "comment"}


async def _answer(writing: Writing, entry: dict[str, str]) -> str | None:
    if entry["kind"] == "caption":
        return await writing.comment_on(entry["text"], "Ana", "lighthouses")
    return await writing.reply_to(entry["text"], "Ana", "Another study of lighthouses.")


async def test_obedient_model_never_gets_a_leak_or_echo_published(
    chat: tuple[ChatState, str],
) -> None:
    """An obedient model leaks keys, links, echoes; the filter fires every time, none get out."""
    state, url = chat
    writing = writing_for(url)
    outputs: list[tuple[dict[str, str], str | None]] = []
    for entry in CORPUS:
        before = writing.safety.stats.rejected
        outputs.append((entry, await _answer(writing, entry)))
        assert writing.safety.stats.rejected > before, f"filter did not fire: {entry['text']}"
    await writing.aclose()

    # The model misbehaved for real: it leaked our key and posted links.
    assert any(LLM_KEY in reply for reply in state.replies)
    assert sum(bool(_LINK.search(reply)) for reply in state.replies) >= 10
    # ...and the filter caught it, for many reasons.
    stats = writing.safety.stats
    assert stats.rejected >= len(CORPUS)
    assert {"secret", "url", "echo", "instruction_echo", "persona_switch"} <= set(stats.by_reason)

    independent = SafetyFilter(SafetySection(max_hashtags=5), SECRETS)
    # Not only the echo rule: even judged without the text it answers, every draft that leaked
    # our key or a link is refused for that very reason.
    for reply in state.replies:
        codes = independent.check(reply, "comment").codes
        if LLM_KEY in reply:
            assert "secret" in codes, reply
        if _LINK.search(reply):
            assert "url" in codes, reply
    for entry, text in outputs:
        if text is None:
            continue
        kind = "comment" if entry["kind"] == "caption" else "reply"
        assert independent.check(text, kind, source=entry["text"]).ok, text  # type: ignore[arg-type]
        assert not any(secret in text for secret in SECRETS)
        assert not _LINK.search(text)
        assert not echoes(text, entry["text"])


async def test_well_behaved_model_still_answers_hostile_posts(chat: tuple[ChatState, str]) -> None:
    """No blanket refusal: with a sane model every hostile post still gets an answer."""
    state, url = chat
    state.responder = plausible_responder
    writing = writing_for(url)
    outputs = [await _answer(writing, entry) for entry in CORPUS]
    await writing.aclose()
    assert all(outputs)
    assert writing.safety.stats.rejected == 0


async def test_secrets_and_config_never_enter_any_prompt(chat: tuple[ChatState, str]) -> None:
    """No configured secret or service address appears in any prompt sent to the LLM or Langflow."""
    state, url = chat
    langflow_state = LangflowState(api_key=LANGFLOW_KEY)
    langflow_state.add_flow(endpoint_name="caption")
    server = LoopbackServer(create_langflow_app(langflow_state)).start()
    try:
        writing = writing_for(url, server.url)
        await writing.image_prompt("lighthouses", "at dawn", ["an old prompt"])
        assert await writing.caption(CaptionRequest("lighthouses", "a lighthouse", ["#aiart"]))
        langflow_state.flows[0].fail = True  # push the chain on to the LLM too
        await writing.caption(CaptionRequest("lighthouses", "a lighthouse", ["#aiart"]))
        for entry in CORPUS[:10]:
            await _answer(writing, entry)
        await writing.aclose()
    finally:
        server.stop()

    sent: list[str] = state.prompts()
    sent += [json.dumps(run.body) for run in langflow_state.runs]
    kinds = {m["role"] for call in state.calls for m in call.messages}
    assert len(state.calls) >= 12 and kinds == {"system", "user"}
    assert len(langflow_state.runs) == 2
    forbidden: list[Any] = [*SECRETS, url, server.url, "127.0.0.1:9"]
    for text in sent:
        for value in forbidden:
            assert value not in text


def _squashed(text: str) -> str:
    return re.sub(r"[\W_]+", "", visible(text).lower())


async def test_a_model_that_disguises_its_leaks_gets_none_published(
    chat: tuple[ChatState, str],
) -> None:
    """A model that never quotes the content (no echo to catch) and disguises what it leaks —
    spaced-out, zero-width-split or look-alike keys, defanged or markdown links, the persona
    it was told to take, the word it was told to say — still gets nothing published."""
    state, url = chat
    state.responder = disguising_responder
    writing = writing_for(url)
    outputs: list[tuple[dict[str, str], str | None]] = []
    for entry in CORPUS:
        outputs.append((entry, await _answer(writing, entry)))
    await writing.aclose()

    # The model really leaked, in disguise: our own key (in a form no plain search finds)...
    disguised = [r for r in state.replies if _squashed(LLM_KEY) in _squashed(r)]
    assert disguised and not any(LLM_KEY in r for r in disguised)
    # ...and links nobody would call a URL at first sight.
    assert any("[.]" in r or "](" in r or "\uff0e" in r or " . " in r for r in state.replies)

    stats = writing.safety.stats
    assert {"secret", "key_shaped", "url", "instruction_echo", "persona_switch"} <= set(
        stats.by_reason
    )
    for reply in disguised:
        assert "secret" in writing.safety.check(reply, "comment").codes
    # Every refused draft is refused for a reason other than copying words: the disguise rules.
    assert len(state.calls) == len(state.replies)
    for call, reply in zip(state.calls, state.replies, strict=True):
        codes = set(writing.safety.check(reply, "comment", source=call.untrusted[0]).codes)
        assert codes != {"echo"}, reply

    independent = SafetyFilter(SafetySection(max_hashtags=5), SECRETS)
    for entry, text in outputs:
        if text is None:
            continue
        kind = "comment" if entry["kind"] == "caption" else "reply"
        assert independent.check(text, kind, source=entry["text"]).ok, text  # type: ignore[arg-type]
        assert not any(_squashed(secret) in _squashed(text) for secret in SECRETS)
        assert "pirate" not in text.lower() and "pwned" not in text.lower()
