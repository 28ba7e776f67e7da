"""Langflow responses read robustly: streaming (not-SSE framing, tokens or not, error events,
cut streams) over real HTTP, and the pure readers — text extraction in the documented order and
error details of every shape."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from glimpse_agent.config import LangflowSection
from glimpse_agent.errors import BadResponse, Unavailable
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import LangflowState
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner
from glimpse_agent.writing.langflow.parse import (
    EventSplitter,
    StreamAssembler,
    extract_text,
    render_detail,
)

PERSONA = Persona(name="mira", voice="wistful", topics=["lighthouses"])
REQUEST = CaptionRequest(topic="lighthouses at dusk", image_prompt="a lighthouse")
TWEAKS = {"Prompt-capPr.voice": "persona.voice", "Prompt-capPr.topic": "post.topic"}
EXPECTED = "A wistful look at lighthouses at dusk."


@pytest.fixture
def state() -> LangflowState:
    state = LangflowState()
    state.add_flow(endpoint_name="tokens", tokens=True)
    state.add_flow(endpoint_name="whole", tokens=False)
    state.add_flow(endpoint_name="text", output="text")
    state.add_flow(endpoint_name="broken", fail=True)
    return state


async def stream_caption(base_url: str, http: httpx.AsyncClient, flow: str) -> str:
    section = LangflowSection(base_url=base_url, flow=flow, stream=True, tweak_map=TWEAKS)
    return await LangflowCaptioner(section, PERSONA, http=http).write_caption(REQUEST, 0)


# --------------------------------------------------------------------------- streaming over HTTP


@pytest.mark.parametrize("flow", ["tokens", "whole", "text"])
async def test_stream_yields_the_text_with_or_without_tokens(
    base_url: str, http: httpx.AsyncClient, state: LangflowState, flow: str
) -> None:
    """?stream=true with token events, without them, and from a Text Output flow."""
    assert await stream_caption(base_url, http, flow) == EXPECTED
    assert state.runs[-1].stream


@pytest.mark.parametrize("shape", ["string", "object"])
async def test_stream_tolerates_data_prefix_and_both_shapes(
    base_url: str, http: httpx.AsyncClient, state: LangflowState, shape: Any
) -> None:
    """A proxy's "data: " prefix and the object message shape inside `end` are both read."""
    state.stream_prefix = True
    state.message_shape = shape
    assert await stream_caption(base_url, http, "tokens") == EXPECTED


async def test_stream_error_events_become_unavailable_with_the_message(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """Error events (twice, no `end`, HTTP still 200) -> Unavailable with a readable message."""
    with pytest.raises(Unavailable) as info:
        await stream_caption(base_url, http, "broken")
    assert "Error running graph" in str(info.value)
    assert "{" not in str(info.value)


async def test_cut_stream_is_a_failure(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A stream that closes with neither `end` nor `error` is a failure, not a partial caption."""
    state.stream_fault = "cut"
    with pytest.raises(Unavailable, match="stopped before the flow ended"):
        await stream_caption(base_url, http, "tokens")


async def test_errors_before_the_stream_starts_are_plain_json(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """A 404 on a streaming request is read like any other error response."""
    from glimpse_agent.errors import Rejected

    with pytest.raises(Rejected, match="Flow identifier nope not found"):
        await stream_caption(base_url, http, "nope")


# --------------------------------------------------------------------------- the event splitter


def _events(*events: dict[str, Any], prefix: str = "") -> str:
    return "".join(prefix + json.dumps(e) + "\n\n" for e in events)


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_splitter_reassembles_events_cut_anywhere(size: int) -> None:
    """Events arrive intact however the bytes are chunked, with or without "data: "."""
    wire = _events(
        {"event": "token", "data": {"chunk": "a"}},
        {"event": "end", "data": {"result": None}},
        prefix="data: ",
    )
    splitter = EventSplitter()
    got = [e for i in range(0, len(wire), size) for e in splitter.feed(wire[i : i + size])]
    got += list(splitter.close())
    assert [e["event"] for e in got] == ["token", "end"]


def test_splitter_reads_a_pretty_printed_event_and_skips_noise() -> None:
    """A multi-line JSON block, SSE comment lines and [DONE] are tolerated."""
    wire = ": keep-alive\n\n" + json.dumps({"event": "end", "data": {}}, indent=2) + "\n\n"
    wire += "data: [DONE]\n\n"
    splitter = EventSplitter()
    got = list(splitter.feed(wire)) + list(splitter.close())
    assert [e["event"] for e in got] == ["end"]
    assert splitter.unreadable == 0


def test_assembler_falls_back_to_messages_then_tokens() -> None:
    """`end` without a readable result: the last machine message, else the tokens, win."""
    a = StreamAssembler()
    a.handle({"event": "add_message", "data": {"sender": "User", "text": "question"}})
    a.handle({"event": "token", "data": {"chunk": "to"}})
    a.handle({"event": "token", "data": {"chunk": "kens"}})
    a.handle({"event": "end", "data": {"result": {"outputs": []}}})
    assert a.text() == "tokens"
    a.handle({"event": "add_message", "data": {"sender": "Machine", "text": "whole"}})
    assert a.text() == "whole"


def test_assembler_end_without_any_text_is_a_bad_response() -> None:
    """An `end` with no text anywhere is BadResponse ("no text output")."""
    a = StreamAssembler()
    a.handle({"event": "end", "data": {"result": {"outputs": []}}})
    with pytest.raises(BadResponse, match="no text output"):
        a.text()


# --------------------------------------------------------------------------- text extraction


def _rd(component_id: str = "ChatOutput-a", **parts: Any) -> dict[str, Any]:
    return {"outputs": [{"inputs": {}, "outputs": [{"component_id": component_id, **parts}]}]}


@pytest.mark.parametrize(
    "body",
    [
        _rd(results={"message": {"text": "T"}}),
        _rd(results={"message": {"text": "", "data": {"text": "T"}}}),
        _rd("TextOutput-a", results={"text": {"text": "T"}}),
        _rd(outputs={"message": {"message": "T"}}),
        _rd(outputs={"message": {"message": {"text": "T"}}}),
        _rd("TextOutput-a", outputs={"text": {"message": "T"}}),
        _rd("TextOutput-a", outputs={"text": {"message": {"text": "T"}}}),
        _rd(artifacts={"message": "T"}),
        _rd(artifacts={"text": {"raw": "T"}}),
        _rd(messages=[{"message": "T"}]),
    ],
    ids=[
        "results.message.text",
        "results.message.data.text",
        "results.text.text",
        "outputs.message.message(str)",
        "outputs.message.message(obj)",
        "outputs.text.message(str)",
        "outputs.text.message(obj)",
        "artifacts.message",
        "artifacts.k.raw",
        "messages[0].message",
    ],
)
def test_text_is_found_wherever_the_documented_paths_put_it(body: dict[str, Any]) -> None:
    """Each documented location of the text is read."""
    assert extract_text(body) == "T"


def test_first_path_wins_and_chat_output_is_preferred() -> None:
    """results.message.text beats later paths; a ChatOutput result beats an earlier other one."""
    body = {
        "outputs": [
            {
                "outputs": [
                    {"component_id": "TextOutput-z", "results": {"text": {"text": "debug"}}},
                    {
                        "component_id": "ChatOutput-a",
                        "results": {"message": {"text": "first"}},
                        "outputs": {"message": {"message": "later"}},
                    },
                ]
            }
        ]
    }
    assert extract_text(body) == "first"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"outputs": []},
        {"outputs": [{"outputs": []}]},
        _rd(results={"message": {"text": "  "}}),
        ["not", "a", "dict"],
    ],
)
def test_no_text_anywhere_is_none(body: Any) -> None:
    """Empty or odd bodies give None (the caller says "no text output"), never an exception."""
    assert extract_text(body) is None


# --------------------------------------------------------------------------- error details


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"detail": "Flow identifier x not found"}, "Flow identifier x not found"),
        (
            {"detail": json.dumps({"message": "Error running graph", "traceback": None})},
            "Error running graph",
        ),
        (
            {"detail": [{"loc": ["body", 12], "msg": "JSON decode error", "type": "json_invalid"}]},
            "12: JSON decode error",
        ),
        (
            {"detail": {"message": "Field 'code' cannot be tweaked", "field": "code"}},
            "Field 'code' cannot be tweaked",
        ),
        ({"error": '500: {"message": "boom"}'}, "boom"),
        ("plain text", "plain text"),
    ],
)
def test_detail_of_every_shape_renders_readably(body: Any, expected: str) -> None:
    """String, JSON-encoded string, list, object and "500: {...}" details read as one line."""
    assert render_detail(body) == expected


def test_detail_is_redacted_and_bounded() -> None:
    """A key echoed by the server never reaches our error text; long details are cut."""
    rendered = render_detail({"detail": "bad key sk-abcdefghijklmnop " + "x" * 500})
    assert "sk-abcdefghijklmnop" not in rendered
    assert len(rendered) <= 300
