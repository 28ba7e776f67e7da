"""Langflow captioner over real HTTP against the Langflow emulator: flows by id and endpoint
name, tweaks, the three auth modes, both response shapes, Text Output flows, every documented
error, timeouts and the image upload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from glimpse_agent.config import AgentConfig, CaptionsSection, LangflowSection
from glimpse_agent.errors import ConfigError, RateLimited, Rejected, Unauthorized, Unavailable
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import LangflowState, create_langflow_app
from glimpse_agent.sandbox.server import LoopbackServer
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner, build_writing

FLOW_ID = "3f1c0e8a-5b7d-4c2e-9a61-0d2b8e4f7a90"
TEXT_FLOW_ID = "7a2d9c4e-1f3b-4e8a-b5c6-9d0e1f2a3b4c"
KEY = "lf-selfhosted-key-8841"
TOKEN = "AstraCS:hosted-app-token-5512"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

PERSONA = Persona(
    name="mira",
    display_name="Mira",
    voice="wistful",
    topics=["lighthouses"],
    art_style="watercolor",
    hashtags=["#aiart", "#sea"],
)
REQUEST = CaptionRequest(
    topic="lighthouses at dusk",
    image_prompt="a lighthouse, watercolor",
    hashtags=["#aiart", "#sea"],
)
TWEAK_MAP = {
    "Prompt-capPr.voice": "persona.voice",
    "Prompt-capPr.topic": "post.topic",
    "Prompt-capPr.hashtags": "post.hashtags",
}


@pytest.fixture
def state() -> LangflowState:
    state = LangflowState(api_key=KEY, hosted_id="lf-org-42", hosted_token=TOKEN)
    state.add_flow(flow_id=FLOW_ID, endpoint_name="caption")
    state.add_flow(flow_id=TEXT_FLOW_ID, endpoint_name="caption-text", output="text")
    state.add_flow(endpoint_name="broken", fail=True)
    return state


def captioner(base_url: str, http: httpx.AsyncClient, **options: Any) -> LangflowCaptioner:
    options.setdefault("flow", FLOW_ID)
    options.setdefault("api_key", KEY)
    options.setdefault("tweak_map", TWEAK_MAP)
    return LangflowCaptioner(LangflowSection(base_url=base_url, **options), PERSONA, http=http)


# --------------------------------------------------------------------------- flows and tweaks


async def test_flow_by_id_returns_the_prompt_filled_from_tweaks(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A flow addressed by UUID answers with its Prompt filled from the mapped tweaks."""
    text = await captioner(base_url, http).write_caption(REQUEST, 0)
    assert text == "A wistful look at lighthouses at dusk. #aiart #sea"
    run = state.runs[-1]
    assert run.flow == FLOW_ID
    assert run.body["tweaks"]["Prompt-capPr"] == {
        "voice": "wistful",
        "topic": "lighthouses at dusk",
        "hashtags": "#aiart #sea",
    }


async def test_flow_by_endpoint_name_works_like_by_id(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """The flow may be named by its endpoint name instead of its UUID."""
    text = await captioner(base_url, http, flow="caption").write_caption(REQUEST, 0)
    assert "lighthouses at dusk" in text
    assert state.runs[-1].flow == "caption"


async def test_body_uses_valid_enums_and_a_per_persona_session(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """The body holds only valid enums (never silently dropped) and this persona's session id."""
    await captioner(base_url, http).write_caption(REQUEST, 0)
    run = state.runs[-1]
    assert not run.dropped
    assert run.body["input_type"] == "chat"
    assert run.body["output_type"] in {"chat", "any"}
    assert run.body["session_id"] == "glimpse-agent-mira"
    assert "lighthouses at dusk" in run.body["input_value"]


async def test_static_tweaks_merge_with_mapped_ones(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Static tweaks are sent too; a mapped value overrides the same static field only."""
    cap = captioner(
        base_url,
        http,
        tweaks={
            "Prompt-capPr": {"voice": "static", "extra": 1},
            "OpenAIModel-x1": {"temperature": 0.2},
        },
    )
    await cap.write_caption(REQUEST, 0)
    tweaks = state.runs[-1].body["tweaks"]
    assert tweaks["Prompt-capPr"]["voice"] == "wistful"
    assert tweaks["Prompt-capPr"]["extra"] == 1
    assert tweaks["OpenAIModel-x1"] == {"temperature": 0.2}


async def test_top_level_tweak_applies_to_every_node_with_that_field(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """A tweak_map key without a node ("voice") becomes a top-level tweak the Prompt picks up."""
    text = await captioner(base_url, http, tweak_map={"voice": "persona.voice"}).write_caption(
        REQUEST, 0
    )
    assert text.startswith("A wistful look at something")


def test_unknown_value_path_and_refused_tweaks_fail_at_build() -> None:
    """Unknown tweak values, protected fields, Chat Input input_value: ConfigError at build."""
    section = LangflowSection(
        flow="caption",
        tweak_map={"Prompt-a.voice": "persona.mood", "ChatInput-b.input_value": "post.topic"},
        tweaks={"Custom-c": {"code": "print(1)"}},
    )
    config = AgentConfig(persona=Path("p.toml"), captions=CaptionsSection(langflow=section))
    with pytest.raises(ConfigError) as info:
        build_writing(config, PERSONA, seed=0)
    keys = {p.key for p in info.value.problems}
    assert keys == {
        "captions.langflow.tweak_map.Prompt-a.voice",
        "captions.langflow.tweak_map.ChatInput-b.input_value",
        "captions.langflow.tweaks.Custom-c",
    }
    assert "persona.voice" in str(info.value)


# --------------------------------------------------------------------------- auth modes


async def test_no_key_sends_no_auth_header(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """With no key configured, no auth header at all is sent (an open server accepts it)."""
    state.api_key = None
    await captioner(base_url, http, api_key=None).write_caption(REQUEST, 0)
    assert state.runs[-1].headers == {}


async def test_self_hosted_key_goes_in_x_api_key(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Self-hosted: the key travels as x-api-key and never as a Bearer token."""
    await captioner(base_url, http).write_caption(REQUEST, 0)
    assert state.runs[-1].headers == {"x-api-key": KEY}


async def test_hosted_mode_uses_lf_prefix_and_bearer(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Hosted (langflow_id set): /lf/{id}/api/v1/run/... with Authorization: Bearer."""
    text = await captioner(base_url, http, api_key=TOKEN, langflow_id="lf-org-42").write_caption(
        REQUEST, 0
    )
    assert "lighthouses" in text
    run = state.runs[-1]
    assert run.hosted
    assert run.headers == {"authorization": f"Bearer {TOKEN}"}


async def test_emulator_refuses_bearer_on_self_hosted_run(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """The emulator, like Langflow, answers 403 to a Bearer token on a self-hosted /run."""
    response = await http.post(
        f"{base_url}/api/v1/run/caption",
        json={"input_value": "x"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("server_key", "our_key"), [(KEY, None), (KEY, "wrong-key-123"), (None, "any-key-at-all")]
)
async def test_missing_or_wrong_key_is_unauthorized_with_a_hint(
    base_url: str,
    http: httpx.AsyncClient,
    state: LangflowState,
    server_key: str | None,
    our_key: str | None,
) -> None:
    """403 (no key, wrong key, key sent to an open server) -> Unauthorized naming the setting."""
    state.api_key = server_key
    with pytest.raises(Unauthorized) as info:
        await captioner(base_url, http, api_key=our_key).write_caption(REQUEST, 0)
    assert info.value.status == 403
    assert "captions.langflow.api_key" in str(info.value)
    assert "x-api-key" in str(info.value)


async def test_hosted_wrong_token_is_unauthorized(base_url: str, http: httpx.AsyncClient) -> None:
    """Hosted mode with a wrong application token -> Unauthorized (Bearer hint)."""
    with pytest.raises(Unauthorized, match="Bearer"):
        await captioner(
            base_url, http, api_key="AstraCS:wrong-token", langflow_id="lf-org-42"
        ).write_caption(REQUEST, 0)


# --------------------------------------------------------------------------- response shapes


@pytest.mark.parametrize("shape", ["string", "object"])
async def test_both_message_shapes_yield_the_text(
    base_url: str, http: httpx.AsyncClient, state: LangflowState, shape: Any
) -> None:
    """outputs.message.message as a string (current) or an object with .text (older/hosted)."""
    state.message_shape = shape
    text = await captioner(base_url, http).write_caption(REQUEST, 0)
    assert text == "A wistful look at lighthouses at dusk. #aiart #sea"


@pytest.mark.parametrize("shape", ["string", "object"])
async def test_text_output_flow_yields_the_text(
    base_url: str, http: httpx.AsyncClient, state: LangflowState, shape: Any
) -> None:
    """A flow ending in a Text Output component (key "text", not "message") works too."""
    state.message_shape = shape
    text = await captioner(base_url, http, flow="caption-text").write_caption(REQUEST, 0)
    assert text == "A wistful look at lighthouses at dusk. #aiart #sea"


async def test_emulator_filters_outputs_by_output_type(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """Like Langflow, output_type "chat" keeps only Chat Output results (why we send "any")."""
    response = await http.post(
        f"{base_url}/api/v1/run/caption-text",
        json={"input_value": "x", "output_type": "chat"},
        headers={"x-api-key": KEY},
    )
    assert response.json()["outputs"][0]["outputs"] == []


async def test_emulator_silently_drops_a_body_with_one_invalid_enum(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """One invalid value (input_type "bogus") and the server runs with defaults, still 200."""
    response = await http.post(
        f"{base_url}/api/v1/run/caption",
        headers={"x-api-key": KEY},
        json={
            "input_value": "x",
            "input_type": "bogus",
            "tweaks": {"Prompt-capPr": {"voice": "loud"}},
        },
    )
    assert response.status_code == 200
    assert state.runs[-1].dropped
    assert "loud" not in json.dumps(response.json())


# --------------------------------------------------------------------------- errors


async def test_unknown_flow_is_rejected_naming_the_setting(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """404 "Flow identifier X not found" -> Rejected, pointing at captions.langflow.flow."""
    with pytest.raises(Rejected) as info:
        await captioner(base_url, http, flow="nope").write_caption(REQUEST, 0)
    assert info.value.status == 404
    assert "Flow identifier nope not found" in str(info.value)
    assert "captions.langflow.flow" in str(info.value)


async def test_input_value_conflict_is_rejected_with_the_servers_reason(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """400 (input_value both in body and Chat Input tweak) -> Rejected with readable detail."""
    cap = captioner(base_url, http, tweaks={"ChatInput-b6UCc": {"input_value": "hi"}})
    with pytest.raises(Rejected) as info:
        await cap.write_caption(REQUEST, 0)
    assert info.value.status == 400
    assert "cannot pass a tweak with the same name" in str(info.value)


async def test_protected_tweak_is_rejected_with_object_detail_rendered(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """422 with an object detail -> Rejected whose message is the object's message."""
    cap = captioner(base_url, http, tweaks={"Prompt-capPr": {"code": "x"}})
    with pytest.raises(Rejected) as info:
        await cap.write_caption(REQUEST, 0)
    assert info.value.status == 422
    assert "Field 'code' of 'Prompt-capPr' cannot be tweaked" in str(info.value)


async def test_emulator_answers_malformed_json_with_a_list_detail(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """Malformed JSON -> 422 with FastAPI's list of validation errors."""
    response = await http.post(
        f"{base_url}/api/v1/run/caption",
        content=b'{"input_value": ',
        headers={"x-api-key": KEY, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "JSON decode error"


async def test_component_failure_is_unavailable_with_the_json_string_detail_readable(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """500 whose detail is a JSON-encoded string -> Unavailable carrying its "message"."""
    with pytest.raises(Unavailable) as info:
        await captioner(base_url, http, flow="broken").write_caption(REQUEST, 0)
    assert info.value.status == 500
    assert "Error running graph: Error building Component OpenAI" in str(info.value)
    assert "{" not in str(info.value)


async def test_auth_backend_down_is_rate_limited_with_retry_after(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """503 + Retry-After -> RateLimited carrying retry_after (retryable, the chain moves on)."""
    state.unavailable_retry_after = 7
    with pytest.raises(RateLimited) as info:
        await captioner(base_url, http).write_caption(REQUEST, 0)
    assert info.value.status == 503
    assert info.value.retry_after == 7
    assert info.value.retryable


async def test_slow_flow_times_out_as_unavailable(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """No answer within captions.langflow.timeout -> Unavailable naming the timeout."""
    state.delay = 5
    with pytest.raises(Unavailable, match=r"no answer within 0\.3 s"):
        await captioner(base_url, http, timeout=0.3).write_caption(REQUEST, 0)


async def test_refused_connection_is_unavailable(http: httpx.AsyncClient) -> None:
    """Nothing listening (Langflow down) -> Unavailable, not an httpx exception."""
    server = LoopbackServer(create_langflow_app(LangflowState())).start()
    url = server.url
    server.stop()
    with pytest.raises(Unavailable, match="cannot reach"):
        await captioner(url, http).write_caption(REQUEST, 0)


async def test_health_endpoint(base_url: str, http: httpx.AsyncClient) -> None:
    """GET /health answers {"status": "ok"} like Langflow's."""
    assert (await http.get(f"{base_url}/health")).json() == {"status": "ok"}


# --------------------------------------------------------------------------- image upload


async def test_send_image_uploads_and_tweaks_the_chat_input_files(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """send_image uploads the image and sends the returned file_path as the `files` tweak."""
    cap = captioner(base_url, http, send_image=True)
    await cap.write_caption(CaptionRequest("sea", "a sea", ["#sea"], image_bytes=PNG), 0)
    assert len(state.uploads) == 1
    upload = state.uploads[0]
    assert upload["filename"] == "image.png"
    assert upload["size"] == len(PNG)
    assert state.runs[-1].body["tweaks"]["files"] == [upload["file_path"]]


async def test_image_file_can_be_mapped_to_a_named_node(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """tweak_map "ChatInput-b6UCc.files" = "post.image_file" puts the path on that node only."""
    cap = captioner(
        base_url,
        http,
        send_image=True,
        tweak_map={**TWEAK_MAP, "ChatInput-b6UCc.files": "post.image_file"},
    )
    await cap.write_caption(CaptionRequest("sea", "a sea", ["#sea"], image_bytes=PNG), 0)
    tweaks = state.runs[-1].body["tweaks"]
    assert tweaks["ChatInput-b6UCc"]["files"] == [state.uploads[0]["file_path"]]
    assert "files" not in tweaks


async def test_failed_upload_still_captions_without_the_image(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A refused upload (422) is logged; the caption comes without it. (An endpoint-name flow
    used to be refused here for want of the UUID; it is now looked up, see
    test_writing_langflow_upload.py.)"""
    state.upload_status = 422
    cap = captioner(base_url, http, flow="caption", send_image=True)
    with capture_logs() as logs:
        text = await cap.write_caption(CaptionRequest("sea", "a sea", [], image_bytes=PNG), 0)
    assert "sea" in text
    assert state.uploads == []
    assert any(e["event"] == "langflow.upload_failed" for e in logs)
