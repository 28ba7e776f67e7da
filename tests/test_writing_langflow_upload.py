"""Langflow image upload when ``flow`` is an endpoint name, over real HTTP against the emulator:
the name is looked up once in ``GET /api/v1/flows/`` (list or page answers, self-hosted or
hosted), the image goes to the flow's UUID, and a failed lookup warns once and never costs the
caption."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import LangflowSection
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import EmulatedFlow, LangflowState
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner
from glimpse_agent.writing.langflow.flows import (
    FlowIdLookup,
    flow_id_for,
    flows_in,
    is_flow_id,
    next_page,
)

FLOW_ID = "3f1c0e8a-5b7d-4c2e-9a61-0d2b8e4f7a90"
OTHER_ID = "7a2d9c4e-1f3b-4e8a-b5c6-9d0e1f2a3b4c"
KEY = "lf-selfhosted-key-8841"
TOKEN = "AstraCS:hosted-app-token-5512"
HOSTED_ID = "lf-org-42"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PERSONA = Persona(
    name="mira",
    display_name="Mira",
    voice="wistful",
    topics=["sea"],
    art_style="ink",
    hashtags=["#sea"],
)
TWEAK_MAP = {"Prompt-capPr.voice": "persona.voice", "Prompt-capPr.topic": "post.topic"}
LOOKUP_FAILED = "langflow.flow_lookup_failed"


def image_request(topic: str = "sea") -> CaptionRequest:
    return CaptionRequest(topic, f"a {topic}", ["#sea"], image_bytes=PNG)


@pytest.fixture
def state() -> LangflowState:
    state = LangflowState(api_key=KEY, hosted_id=HOSTED_ID, hosted_token=TOKEN)
    state.add_flow(flow_id=OTHER_ID, endpoint_name="caption-text", output="text")
    state.add_flow(flow_id=FLOW_ID, endpoint_name="caption")
    return state


def captioner(
    base_url: str, http: httpx.AsyncClient, clock: SimulatedClock | None = None, **options: Any
) -> LangflowCaptioner:
    options.setdefault("flow", "caption")
    options.setdefault("api_key", KEY)
    options.setdefault("tweak_map", TWEAK_MAP)
    options.setdefault("send_image", True)
    section = LangflowSection(base_url=base_url, **options)
    return LangflowCaptioner(section, PERSONA, http=http, clock=clock)


def warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == LOOKUP_FAILED]


# --------------------------------------------------------------------------- resolving the name


async def test_endpoint_name_flow_uploads_to_the_flows_uuid(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """flow = "caption": the image goes to that flow's UUID and the run's `files` tweak carries
    the returned file_path; the run itself still names the flow as configured."""
    text = await captioner(base_url, http).write_caption(image_request(), 0)
    assert "sea" in text
    [upload] = state.uploads
    assert upload["file_path"].startswith(f"{FLOW_ID}/")
    run = state.runs[-1]
    assert run.flow == "caption"
    assert run.body["tweaks"]["files"] == [upload["file_path"]]


async def test_lookup_sends_the_self_hosted_key_as_x_api_key(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """The flow list is asked with the same auth as /run: x-api-key, no Bearer."""
    await captioner(base_url, http).write_caption(image_request(), 0)
    [listing] = state.listings
    assert listing.status == 200
    assert listing.headers == {"x-api-key": KEY}


async def test_flow_id_is_looked_up_once_for_several_captions(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Three captions in a row and three at once: one lookup, every image to the UUID."""
    cap = captioner(base_url, http)
    for topic in ("sea", "dunes", "harbour"):
        await cap.write_caption(image_request(topic), 0)
    await asyncio.gather(*(cap.write_caption(image_request(t), 0) for t in ("a", "b", "c")))
    assert len(state.listings) == 1
    assert len(state.uploads) == 6
    assert all(u["file_path"].startswith(f"{FLOW_ID}/") for u in state.uploads)


async def test_uuid_flow_is_never_looked_up(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """flow given as a UUID: no flow list request, the upload uses it directly."""
    await captioner(base_url, http, flow=FLOW_ID).write_caption(image_request(), 0)
    assert state.listings == []
    assert state.uploads[0]["file_path"].startswith(f"{FLOW_ID}/")


async def test_no_lookup_without_send_image(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """send_image off: an endpoint-name flow costs no flow list request and no upload."""
    await captioner(base_url, http, send_image=False).write_caption(image_request(), 0)
    assert state.listings == []
    assert state.uploads == []


async def test_endpoint_name_wins_over_a_flow_named_the_same(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A flow *named* "caption" listed first does not shadow the one whose endpoint is "caption"."""
    state.flows.insert(0, EmulatedFlow(id=str(uuid.uuid4()), name="caption"))
    await captioner(base_url, http).write_caption(image_request(), 0)
    assert state.uploads[0]["file_path"].startswith(f"{FLOW_ID}/")


async def test_flow_found_by_its_name_when_no_endpoint_name_matches(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A flow without an endpoint name is found by its name."""
    flow = state.add_flow(name="Sea Captions")
    assert await captioner(base_url, http, flow="Sea Captions").flow_ids.flow_id() == flow.id


async def test_names_match_case_sensitively(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """ "Caption" is not "caption", as for Langflow's own endpoint-name lookup."""
    with capture_logs():
        assert await captioner(base_url, http, flow="Caption").flow_ids.flow_id() is None


# --------------------------------------------------------------------------- failed lookups


async def test_unknown_name_warns_once_and_captions_without_the_image(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A flow /run knows but the list does not show (another user's): one warning naming the
    flow and the fix, then every caption is written without the image and without uploads."""
    state.add_flow(endpoint_name="shared-caption", listed=False)
    cap = captioner(base_url, http, flow="shared-caption")
    with capture_logs() as logs:
        texts = [await cap.write_caption(image_request(t), 0) for t in ("sea", "dunes", "fog")]
    assert [t for t in texts if t] == texts
    assert state.uploads == []
    assert all("files" not in run.body["tweaks"] for run in state.runs)
    assert len(state.listings) == 1
    [warning] = warnings(logs)
    assert warning["log_level"] == "warning"
    assert warning["flow"] == "shared-caption"
    assert "shared-caption" in warning["error"]
    assert "set captions.langflow.flow to the flow's UUID" in warning["hint"]
    assert not any(e["event"] == "langflow.upload_failed" for e in logs)


@pytest.mark.parametrize("status", [404, 403, 500])
async def test_refused_lookup_warns_once_and_captions_without_the_image(
    base_url: str, http: httpx.AsyncClient, state: LangflowState, status: int
) -> None:
    """A server or proxy refusing GET /flows/: one warning with the status, captions go on."""
    state.listing_status = status
    cap = captioner(base_url, http)
    with capture_logs() as logs:
        for topic in ("sea", "dunes"):
            assert "wistful" in await cap.write_caption(image_request(topic), 0)
    [warning] = warnings(logs)
    assert f"HTTP {status}" in warning["error"]
    assert len(state.listings) == 1
    assert state.uploads == []


async def test_lookup_is_retried_only_after_the_cool_down(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """After a failed lookup nothing is asked for an hour; then once more, and a fixed server's
    answer is used from then on."""
    clock = SimulatedClock(datetime(2026, 5, 1, 9, tzinfo=UTC))
    state.listing_status = 404
    cap = captioner(base_url, http, clock=clock)
    with capture_logs() as logs:
        await cap.write_caption(image_request(), 0)
        clock.advance(3599)
        await cap.write_caption(image_request(), 0)
        assert len(state.listings) == 1
        state.listing_status = None
        clock.advance(2)
        await cap.write_caption(image_request(), 0)
        await cap.write_caption(image_request(), 0)
    assert len(state.listings) == 2
    assert len(warnings(logs)) == 1
    assert len(state.uploads) == 2
    assert state.runs[-1].body["tweaks"]["files"] == [state.uploads[-1]["file_path"]]


async def test_unreachable_flow_list_warns_and_answers_none() -> None:
    """A network error on the lookup is a warning and no UUID, never an exception."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        lookup = FlowIdLookup(
            "caption",
            "http://langflow.invalid/api/v1",
            http=http,
            headers=dict,
            timeout=httpx.Timeout(5.0),
            log=get_logger("test"),
        )
        with capture_logs() as logs:
            assert await lookup.flow_id() is None
            assert await lookup.flow_id() is None
    [warning] = warnings(logs)
    assert "ConnectError" in warning["error"]


async def test_refused_upload_still_captions_without_the_image(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """The flow is found but the upload is refused: logged, and the caption comes without it."""
    state.upload_status = 500
    with capture_logs() as logs:
        text = await captioner(base_url, http).write_caption(image_request(), 0)
    assert "sea" in text
    assert state.uploads == []
    assert "files" not in state.runs[-1].body["tweaks"]
    assert any(e["event"] == "langflow.upload_failed" for e in logs)


# --------------------------------------------------------------------------- hosted and pages


async def test_hosted_lookup_uses_the_lf_prefix_and_bearer(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Hosted: GET /lf/{id}/api/v1/flows/ with the app token as Bearer; the upload follows."""
    cap = captioner(base_url, http, langflow_id=HOSTED_ID, api_key=TOKEN)
    await cap.write_caption(image_request(), 0)
    [listing] = state.listings
    assert listing.hosted
    assert listing.status == 200
    assert listing.headers == {"authorization": f"Bearer {TOKEN}"}
    assert state.uploads[0]["file_path"].startswith(f"{FLOW_ID}/")


async def test_paginated_flow_list_is_read_to_the_flow(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """A server answering pages of one flow: the client reads page after page to find it."""
    state.paginate = 1
    state.add_flow(endpoint_name="zzz-last")
    await captioner(base_url, http).write_caption(image_request(), 0)
    assert state.uploads[0]["file_path"].startswith(f"{FLOW_ID}/")
    assert [listing.body.get("page") for listing in state.listings] == [None, "2", "3"]


# --------------------------------------------------------------------------- the emulator


async def test_emulator_lists_flows_as_a_list_by_default(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """GET /api/v1/flows/ answers a JSON list of flows with id, name and endpoint_name."""
    response = await http.get(f"{base_url}/api/v1/flows/", headers={"x-api-key": KEY})
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert {"id": FLOW_ID, "name": "caption", "endpoint_name": "caption"} in body


async def test_emulator_answers_a_page_when_asked_for_one(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """?page=&size= selects the page object: items, total, page, size, pages."""
    response = await http.get(
        f"{base_url}/api/v1/flows/", params={"page": 2, "size": 1}, headers={"x-api-key": KEY}
    )
    body = response.json()
    assert body == {
        "items": [{"id": FLOW_ID, "name": "caption", "endpoint_name": "caption"}],
        "total": 2,
        "page": 2,
        "size": 1,
        "pages": 2,
    }


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/v1/flows/", {}, 403),
        ("/api/v1/flows/", {"Authorization": f"Bearer {KEY}"}, 403),
        ("/api/v1/flows/", {"x-api-key": "wrong"}, 403),
        (f"/lf/{HOSTED_ID}/api/v1/flows/", {"x-api-key": KEY}, 401),
        ("/lf/other-org/api/v1/flows/", {"Authorization": f"Bearer {TOKEN}"}, 404),
    ],
)
async def test_emulator_enforces_run_auth_on_the_flow_list(
    base_url: str, http: httpx.AsyncClient, path: str, headers: dict[str, str], status: int
) -> None:
    """The flow list wants the same credentials as /run, self-hosted and hosted."""
    assert (await http.get(base_url + path, headers=headers)).status_code == status


# --------------------------------------------------------------------------- reading the list


def test_flows_are_read_from_a_list_or_a_page() -> None:
    """Both answer shapes give their flows; anything else gives none."""
    flow = {"id": FLOW_ID, "name": "caption", "endpoint_name": "caption"}
    assert flows_in([flow, "junk"]) == [flow]
    assert flows_in({"items": [flow], "total": 1, "page": 1, "size": 50, "pages": 1}) == [flow]
    assert flows_in({"detail": "nope"}) == []
    assert flows_in(None) == []
    assert next_page({"items": [], "page": 1, "pages": 3}) == 2
    assert next_page({"items": [], "page": 3, "pages": 3}) is None
    assert next_page([flow]) is None


def test_flow_id_prefers_endpoint_name_then_name() -> None:
    """endpoint_name first, then name, case-sensitive; ids that are not UUIDs never match."""
    by_name = {"id": OTHER_ID, "name": "caption", "endpoint_name": None}
    by_endpoint = {"id": FLOW_ID, "name": "Caption flow", "endpoint_name": "caption"}
    assert flow_id_for([by_name, by_endpoint], "caption") == FLOW_ID
    assert flow_id_for([by_name], "caption") == OTHER_ID
    assert flow_id_for([by_endpoint], "Caption flow") == FLOW_ID
    assert flow_id_for([by_endpoint], "CAPTION") is None
    assert flow_id_for([{"id": "not-a-uuid", "endpoint_name": "caption"}], "caption") is None
    assert is_flow_id(FLOW_ID)
    assert not is_flow_id("caption")
