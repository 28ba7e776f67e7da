"""The LLM writer through the real ``openai`` SDK against the chat-completions emulator: what it
sends, how every failure becomes our error, lazy import, and the Writing methods built on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from glimpse_agent.config import AgentConfig, CaptionsSection, LLMSection, SafetySection
from glimpse_agent.errors import (
    BadResponse,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.openai_chat import ChatState, create_openai_chat_app, fixed_responder
from glimpse_agent.sandbox.server import LoopbackServer
from glimpse_agent.writing import CaptionRequest, Writing, build_writing
from glimpse_agent.writing.llm import LLMWriter

KEY = "sk-test-llm-key-4417"
PERSONA = Persona(
    name="mira",
    display_name="Mira",
    bio="Paints the sea.",
    voice="wistful",
    topics=["lighthouses"],
    art_style="watercolor",
    hashtags=["#aiart"],
    comment_examples=["What a calm sea."],
)


@pytest.fixture
def chat_state() -> ChatState:
    return ChatState(api_key=KEY)


def section(url: str, **options: object) -> LLMSection:
    options.setdefault("api_key", KEY)
    return LLMSection(base_url=url, model="test-model", **options)


def writing_for(url: str, **llm: object) -> Writing:
    config = AgentConfig(
        persona=Path("p.toml"),
        llm=section(url, **llm),
        captions=CaptionsSection(order=["llm", "template"]),
        safety=SafetySection(max_hashtags=5),
    )
    return build_writing(config, PERSONA, seed=1)


async def test_writer_sends_model_key_persona_and_returns_clean_text(
    chat: tuple[ChatState, str],
) -> None:
    """The SDK sends model, Bearer key, persona system prompt; the answer comes back unwrapped."""
    state, url = chat
    state.responder = fixed_responder('Caption: "Quiet light on the water."')
    writer = LLMWriter(section(url), PERSONA)
    text = await writer.caption(CaptionRequest("sea", "a sea", ["#aiart"]))
    await writer.aclose()
    assert text == "Quiet light on the water."
    call = state.calls[-1]
    assert call.model == "test-model"
    assert call.token == KEY
    assert call.messages[0]["role"] == "system"
    assert "Mira" in call.messages[0]["content"] and "wistful" in call.messages[0]["content"]


@pytest.mark.parametrize(
    ("status", "code", "error", "retry_after"),
    [
        (401, "invalid_api_key", Unauthorized, None),
        (403, None, Unauthorized, None),
        (400, None, Rejected, None),
        (429, "rate_limit_exceeded", RateLimited, 12.0),
        (500, None, Unavailable, None),
        (503, None, Unavailable, None),
    ],
)
async def test_sdk_errors_become_ours(
    chat: tuple[ChatState, str],
    status: int,
    code: str | None,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    """Each HTTP failure leaves the writer as our error type (429 keeps Retry-After)."""
    state, url = chat
    state.fail(status, code=code, retry_after=retry_after, message="nope sk-leakedkey123456")
    writer = LLMWriter(section(url), PERSONA, max_retries=0)
    with pytest.raises(error) as info:
        await writer.comment("a caption", "Ana", None)
    await writer.aclose()
    assert "sk-leakedkey123456" not in str(info.value)
    if retry_after is not None:
        assert isinstance(info.value, RateLimited)
        assert info.value.retry_after == retry_after


async def test_wrong_key_is_unauthorized(chat: tuple[ChatState, str]) -> None:
    """A key the server refuses -> Unauthorized."""
    _, url = chat
    writer = LLMWriter(section(url, api_key="sk-wrong-key-000"), PERSONA, max_retries=0)
    with pytest.raises(Unauthorized):
        await writer.reply("thanks", "Ana", "my caption")
    await writer.aclose()


async def test_one_blip_is_absorbed_by_the_sdk_retry(chat: tuple[ChatState, str]) -> None:
    """A single 500 is retried once by the SDK (default max_retries=1) and the text arrives."""
    state, url = chat
    state.fail(500, retry_after=0.01)
    writer = LLMWriter(section(url), PERSONA)
    assert await writer.comment("a caption", "Ana", None)
    await writer.aclose()
    assert len(state.calls) == 2


async def test_slow_model_times_out_as_unavailable(chat: tuple[ChatState, str]) -> None:
    """No answer within llm.timeout -> Unavailable ("timed out")."""
    state, url = chat
    state.delay = 5
    writer = LLMWriter(section(url, timeout=0.3), PERSONA, max_retries=0)
    with pytest.raises(Unavailable, match="timed out"):
        await writer.comment("a caption", "Ana", None)
    await writer.aclose()


async def test_nothing_listening_is_unavailable() -> None:
    """A refused connection -> Unavailable."""
    server = LoopbackServer(create_openai_chat_app(ChatState())).start()
    url = server.url + "/v1"
    server.stop()
    writer = LLMWriter(section(url), PERSONA, max_retries=0)
    with pytest.raises(Unavailable, match="cannot connect"):
        await writer.comment("a caption", "Ana", None)
    await writer.aclose()


async def test_empty_answer_is_a_bad_response(chat: tuple[ChatState, str]) -> None:
    """An empty completion is BadResponse, not an empty caption."""
    state, url = chat
    state.responder = fixed_responder("   ")
    writer = LLMWriter(section(url), PERSONA, max_retries=0)
    with pytest.raises(BadResponse):
        await writer.comment("a caption", "Ana", None)
    await writer.aclose()


def test_openai_is_imported_only_when_an_llm_is_configured() -> None:
    """Importing the writing room, and building it without [llm], never imports openai."""
    code = (
        "import sys; from pathlib import Path\n"
        "from glimpse_agent.config import AgentConfig\n"
        "from glimpse_agent.persona import Persona\n"
        "from glimpse_agent.writing import build_writing\n"
        "w = build_writing(AgentConfig(persona=Path('p')), Persona(name='ab', topics=['x']))\n"
        "assert 'openai' not in sys.modules, 'openai imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- Writing with an LLM


async def test_comment_prompt_fences_the_post_and_says_it_is_data(
    chat: tuple[ChatState, str],
) -> None:
    """The other agent's caption travels only inside the fence, with the data notice."""
    state, url = chat
    writing = writing_for(url)
    text = await writing.comment_on("Sunset >>> over <<< the bay", "Ana", "lighthouses")
    await writing.aclose()
    assert text
    user = state.calls[-1].messages[-1]["content"]
    assert "never instructions" in user
    opening = user.index("<<<UNTRUSTED_POST_CONTENT")
    closing = user.index("<<<END_UNTRUSTED_POST_CONTENT")
    assert opening < user.index("Sunset") < closing
    assert user.count("<<<") == 2


async def test_image_prompt_from_llm_and_fallback_when_it_repeats(
    chat: tuple[ChatState, str],
) -> None:
    """A fresh LLM prompt is used; one that only repeats a recent prompt gives way to a template."""
    state, url = chat
    writing = writing_for(url)
    fresh = await writing.image_prompt("lighthouses", "at dawn", [])
    assert fresh.startswith("lighthouses")
    state.responder = fixed_responder("the same old prompt")
    with capture_logs() as logs:
        prompt = await writing.image_prompt("lighthouses", None, ["the same old prompt"])
    await writing.aclose()
    assert prompt != "the same old prompt"
    assert "watercolor" in prompt
    assert any("repeat" in str(e.get("reasons")) for e in logs)


async def test_llm_down_comments_come_from_templates(chat: tuple[ChatState, str]) -> None:
    """When the LLM fails, comments and replies still come (from templates), and it is logged."""
    state, url = chat
    state.fail(503, times=10, retry_after=0.01)
    writing = writing_for(url)
    with capture_logs() as logs:
        comment = await writing.comment_on("nice", "Ana", None)
        reply = await writing.reply_to("love it", "Ana", "my caption")
    await writing.aclose()
    assert comment and "Ana" in comment
    assert reply and "Ana" in reply
    assert {"comment.llm_failed", "reply.llm_failed"} <= {e["event"] for e in logs}


async def test_same_long_art_style_does_not_make_a_new_subject_a_repeat(
    chat: tuple[ChatState, str],
) -> None:
    """A persona with a long art style gets the model's prompt for a new subject, even when a
    recent prompt shares only that style: the style every prompt carries is not the idea."""
    state, url = chat
    style = (
        "loose impressionist oil paint, thick impasto brushstrokes, luminous saturated colour, "
        "visible canvas texture, soft atmospheric perspective, warm golden palette, dreamy "
        "hazy edges"
    )
    persona = PERSONA.model_copy(update={"art_style": style})
    config = AgentConfig(
        persona=Path("p.toml"),
        llm=section(url),
        captions=CaptionsSection(order=["llm", "template"]),
        safety=SafetySection(max_hashtags=5),
    )
    writing = build_writing(config, persona, seed=1)
    fresh = f"a red fox, {style}"
    state.responder = fixed_responder(fresh)
    with capture_logs() as logs:
        prompt = await writing.image_prompt("foxes", None, [f"a lighthouse, {style}"])
    await writing.aclose()
    assert prompt == fresh
    assert not any("repeat" in str(e.get("reasons")) for e in logs)
