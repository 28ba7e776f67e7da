"""The Langflow emulator against the client Langflow's own API panel tells users to install
(``@datastax/langflow-client``, github.com/datastax/langflow-client-ts), not against our adapter.

tests/data/langflow_client.json transcribes, at commit 41cf45dbf2de016cd6bc80b033256028e68cb8ad,
what that client sends (paths, headers, body keys, the stream and upload requests) and what it
reads (``session_id``, ``outputs``, ``chatOutputText``, the NDJSON stream events, the upload's
``flowId``/``file_path``), with the two answers it recorded from a real Langflow server. The
emulator is sent exactly those requests and must answer with every key the real server sent;
our adapter must send what the client sends."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse_agent.config import LangflowSection
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import LangflowState
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner
from glimpse_agent.writing.langflow.parse import extract_text

FIXTURE = json.loads(
    (Path(__file__).parent / "data" / "langflow_client.json").read_text(encoding="utf-8")
)
RUN, STREAM, UPLOAD = FIXTURE["run"], FIXTURE["stream"], FIXTURE["upload"]
MODEL, AGENT = RUN["recorded"]["model"], RUN["recorded"]["agent"]
KEY = "lf-contract-key-3301"
TOKEN = "AstraCS:contract-token-7720"
HOSTED_ID = "lf-org-contract"
FLOW_ID = "5b0f6a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
TEXT_FLOW_ID = "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
TWEAKS = {"Prompt-capPr": {"voice": "wistful", "topic": "tides"}}
EXPECTED = "A wistful look at tides."
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PERSONA = Persona(name="mira", voice="wistful", topics=["tides"], hashtags=["#sea"])


# --------------------------------------------------------------------------- the client's reading


def chat_output_text(body: dict[str, Any]) -> str | None:
    """FlowResponse.chatOutputText, as transcribed in the fixture (src/flow_response.ts)."""
    for run in body["outputs"]:
        if isinstance(run.get("outputs"), list):
            chat = next((o for o in run["outputs"] if (o.get("outputs") or {}).get("message")), {})
            message = ((chat.get("outputs") or {}).get("message") or {}).get("message")
            return message if isinstance(message, str) else (message or {}).get("text")
    return None


def ndjson(chunks: Iterable[str]) -> Iterator[Any]:
    """NDJSONStream, as transcribed in the fixture (src/ndjson.ts)."""
    buffer = ""
    for chunk in chunks:
        for line in chunk.split("\n"):
            if buffer or line.lstrip().startswith("{"):
                buffer += line
            try:
                parsed = json.loads(buffer)
            except ValueError:
                continue
            yield parsed
            buffer = ""


def keys(obj: Any) -> set[str]:
    assert isinstance(obj, dict), obj
    return set(obj)


def result_data(body: dict[str, Any]) -> dict[str, Any]:
    (run,) = body["outputs"]
    (result,) = run["outputs"]
    assert isinstance(result, dict)
    return result


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def state() -> LangflowState:
    state = LangflowState(api_key=KEY, hosted_id=HOSTED_ID, hosted_token=TOKEN)
    state.add_flow(flow_id=FLOW_ID, endpoint_name="caption")
    state.add_flow(flow_id=TEXT_FLOW_ID, endpoint_name="caption-text", output="text")
    return state


def client_headers(hosted: bool = False) -> dict[str, str]:
    """The headers Flow.run sends, with the client's auth for a self-hosted or DataStax base."""
    headers = dict(RUN["headers"])
    auth = RUN["auth"]
    if hosted:
        headers[auth["hosted"]] = f"{auth['hosted_scheme']} {TOKEN}"
    else:
        headers[auth["self_hosted"]] = KEY
    return headers


def client_body(**options: Any) -> str:
    """Flow.run's body: its defaults, then the options; an unset session_id is left out."""
    body = {"input_value": "hello", "tweaks": TWEAKS, **RUN["defaults"], **options}
    assert set(body) <= set(RUN["body_keys"])
    return json.dumps(body)


# --------------------------------------------------------------------------- the source


def test_fixture_names_its_source_commit_and_licence() -> None:
    assert FIXTURE["source"] == "https://github.com/datastax/langflow-client-ts"
    assert FIXTURE["commit"] == "41cf45dbf2de016cd6bc80b033256028e68cb8ad"
    assert FIXTURE["licence"].startswith("Apache-2.0")
    assert FIXTURE["panel"]["commit"] == "06559958df8771d4b21e28fa29efe73175324250"


@pytest.mark.parametrize("recorded", [MODEL, AGENT], ids=["model", "agent"])
def test_the_recorded_real_answers_read_the_same_by_the_client_and_by_us(
    recorded: dict[str, Any],
) -> None:
    """Our transcription of chatOutputText and our adapter's reader both find the text in
    what a real server answered, whether outputs.message.message is an object or a string."""
    text = result_data(recorded)["results"]["message"]["text"]
    assert chat_output_text(recorded) == text
    assert extract_text(recorded) == text.strip()


# --------------------------------------------------------------------------- the emulator


@pytest.mark.parametrize("session", [None, "user_1"])
async def test_run_as_the_client_sends_it_answers_what_it_reads(
    base_url: str, http: httpx.AsyncClient, state: LangflowState, session: str | None
) -> None:
    """Flow.run's request (self-hosted, x-api-key, the client's defaults, session_id set or
    left out): 2xx with session_id and outputs, and chatOutputText gives the flow's text."""
    options = {"session_id": session} if session else {}
    path = RUN["path"].format(flow=FLOW_ID)
    r = await http.post(base_url + path, content=client_body(**options), headers=client_headers())
    assert r.is_success, r.text
    body = r.json()
    assert set(RUN["answer_reads"]) <= keys(body)
    assert body["session_id"] == (session or FLOW_ID)
    assert chat_output_text(body) == EXPECTED
    assert state.runs[-1].applied["input_type"] == RUN["defaults"]["input_type"]


async def test_hosted_run_as_the_client_sends_it(base_url: str, http: httpx.AsyncClient) -> None:
    """A DataStax base: /lf/{langflowId}/api/v1/run/{flow} with Authorization: Bearer."""
    path = RUN["hosted_path"].format(langflow_id=HOSTED_ID, flow="caption")
    r = await http.post(base_url + path, content=client_body(), headers=client_headers(True))
    assert r.is_success, r.text
    assert chat_output_text(r.json()) == EXPECTED


async def test_string_shape_answer_carries_every_key_the_real_server_sent(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """Against the recorded agent answer (outputs.message.message a string): each level of
    the emulator's answer has at least the keys the real server's had."""
    path = RUN["path"].format(flow=FLOW_ID)
    r = await http.post(base_url + path, content=client_body(), headers=client_headers())
    ours, real = result_data(r.json()), result_data(AGENT)
    assert keys(real) <= keys(ours)
    assert keys(real["outputs"]["message"]) <= keys(ours["outputs"]["message"])
    assert ours["outputs"]["message"]["type"] == real["outputs"]["message"]["type"]
    assert keys(real["artifacts"]) <= keys(ours["artifacts"])
    assert keys(real["messages"][0]) <= keys(ours["messages"][0])
    assert keys(real["results"]["message"]) <= keys(ours["results"]["message"])
    assert keys(real["results"]["message"]["data"]) <= keys(ours["results"]["message"]["data"])


async def test_object_shape_answer_carries_every_key_the_real_server_sent(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Against the recorded model answer (outputs.message.message a Message object)."""
    state.message_shape = "object"
    path = RUN["path"].format(flow=FLOW_ID)
    r = await http.post(base_url + path, content=client_body(), headers=client_headers())
    ours, real = result_data(r.json()), result_data(MODEL)
    assert keys(real) <= keys(ours)
    assert keys(real["outputs"]["message"]) <= keys(ours["outputs"]["message"])
    assert ours["outputs"]["message"]["type"] == real["outputs"]["message"]["type"]
    real_message = real["outputs"]["message"]["message"]
    assert keys(real_message) <= keys(ours["outputs"]["message"]["message"])
    assert chat_output_text(r.json()) == EXPECTED


async def test_text_output_flow_gives_the_client_no_chat_text_but_gives_us_text(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """A flow ending in a Text Output has no outputs.message: chatOutputText finds nothing
    (as on a real server), while our reader, asking output_type any, still finds the text."""
    path = RUN["path"].format(flow=TEXT_FLOW_ID)
    body = client_body(output_type="any")
    r = await http.post(base_url + path, content=body, headers=client_headers())
    assert r.is_success
    assert chat_output_text(r.json()) is None
    assert extract_text(r.json()) == EXPECTED


@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_stream_as_the_client_reads_it(
    base_url: str, http: httpx.AsyncClient, chunk: int
) -> None:
    """Flow.stream's request (?stream=true): the NDJSON reader, fed in chunks of any size,
    gets only the client's event types, each with the data keys it declares; the tokens and
    the end event's result give the flow's text."""
    path = RUN["path"].format(flow=FLOW_ID)
    r = await http.post(
        base_url + path,
        params=STREAM["query"],
        content=client_body(session_id="user_1"),
        headers=client_headers(),
    )
    assert r.is_success
    text = r.text
    events = list(ndjson(text[i : i + chunk] for i in range(0, len(text), chunk)))
    names = [e["event"] for e in events]
    assert set(names) == set(STREAM["events"]) and names[-1] == "end"
    for event in events:
        assert set(STREAM["events"][event["event"]]) <= keys(event["data"]), event
    tokens = "".join(e["data"]["chunk"] for e in events if e["event"] == "token")
    assert tokens == EXPECTED
    assert chat_output_text(events[-1]["data"]["result"]) == EXPECTED


async def test_upload_as_the_client_sends_it(
    base_url: str, http: httpx.AsyncClient, state: LangflowState
) -> None:
    """Flow.uploadFile: multipart ``file`` to /api/v1/files/upload/{flow}; it reads flowId
    and file_path."""
    path = UPLOAD["path"].format(flow_id=FLOW_ID)
    headers = {**UPLOAD["headers"], RUN["auth"]["self_hosted"]: KEY}
    files = {UPLOAD["multipart_field"]: ("bodi.png", PNG, "image/png")}
    r = await http.post(base_url + path, files=files, headers=headers)
    assert r.is_success, r.text
    body = r.json()
    assert set(UPLOAD["answer_reads"]) <= keys(body)
    assert body["flowId"] == FLOW_ID and isinstance(body["file_path"], str)
    assert state.uploads[-1]["file_path"] == body["file_path"]


# --------------------------------------------------------------------------- our adapter


class Recorder:
    """Every request our adapter sends, as httpx built it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)


def captioner(base_url: str, http: httpx.AsyncClient, **options: Any) -> LangflowCaptioner:
    options.setdefault("flow", FLOW_ID)
    options.setdefault("api_key", KEY)
    options.setdefault("tweak_map", {"Prompt-capPr.voice": "persona.voice"})
    section = LangflowSection(base_url=base_url, **options)
    return LangflowCaptioner(section, PERSONA, http=http)


def assert_run_request_as_the_clients(request: httpx.Request, hosted: bool) -> dict[str, Any]:
    assert request.method == RUN["method"]
    assert request.headers["content-type"] == RUN["headers"]["Content-Type"]
    auth = RUN["auth"]
    if hosted:
        assert request.headers[auth["hosted"]] == f"{auth['hosted_scheme']} {TOKEN}"
        assert request.url.path == RUN["hosted_path"].format(langflow_id=HOSTED_ID, flow=FLOW_ID)
    else:
        assert request.headers[auth["self_hosted"]] == KEY
        assert request.url.path == RUN["path"].format(flow=FLOW_ID)
    body = json.loads(request.content)
    assert set(RUN["body_keys"]) <= set(body)
    assert body["input_type"] in RUN["input_types"]
    assert body["output_type"] in RUN["output_types"]
    assert isinstance(body["tweaks"], dict) and isinstance(body["session_id"], str)
    return body


@pytest.mark.parametrize("hosted", [False, True], ids=["self-hosted", "hosted"])
@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_adapter_sends_what_the_client_sends(
    base_url: str, state: LangflowState, hosted: bool, stream: bool
) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient(event_hooks={"request": [recorder]}) as http:
        options: dict[str, Any] = {"stream": stream}
        if hosted:
            options |= {"langflow_id": HOSTED_ID, "api_key": TOKEN}
        request = CaptionRequest(topic="tides", image_prompt="the sea")
        text = await captioner(base_url, http, **options).write_caption(request, 0)
    assert text.startswith("A wistful look at")
    (sent,) = recorder.requests
    assert_run_request_as_the_clients(sent, hosted)
    assert (sent.url.params.get("stream") == "true") is stream
    assert not state.runs[-1].dropped  # every field valid: the server ran our body


async def test_adapter_uploads_as_the_client_does(base_url: str, state: LangflowState) -> None:
    """The image goes as multipart ``file`` to the flow's upload path, and the file_path it
    answers reaches the run's tweaks under ``files`` (the client's README: the Chat Input's
    ``files`` tweak)."""
    recorder = Recorder()
    async with httpx.AsyncClient(event_hooks={"request": [recorder]}) as http:
        request = CaptionRequest("tides", "the sea", ["#sea"], image_bytes=PNG)
        await captioner(base_url, http, send_image=True).write_caption(request, 0)
    upload, run = recorder.requests
    assert upload.method == UPLOAD["method"]
    assert upload.url.path == UPLOAD["path"].format(flow_id=FLOW_ID)
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert len(state.uploads) == 1  # the emulator takes the image from the field ``file`` only
    body = assert_run_request_as_the_clients(run, hosted=False)
    assert state.uploads[-1]["file_path"] in json.dumps(body["tweaks"]["files"])
