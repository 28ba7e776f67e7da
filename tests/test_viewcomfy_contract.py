"""The ViewComfy emulator against ViewComfy's own client (``ViewComfy/cloud-public``), not
against our adapter: tests/data/viewcomfy_cloud_public.json transcribes what that client sends
and what it reads, at two commits: eb629741fd58d042be8a9c30969d5cca405dc523 (the deployment
generation, inline and link outputs) and 5c5e433fbe114fdad7b5fcbc1e70a0a5e2f49251 (the workflow
API). The client builds ``PromptResult(**answer)``, so an answer with a key too many or too few
would crash it: the key sets below are exact where the client's are."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from glimpse_agent.sandbox.images.viewcomfy import CLIENT_ID, CLIENT_SECRET, ViewComfyState

FIXTURE = json.loads(
    (Path(__file__).parent / "data" / "viewcomfy_cloud_public.json").read_text(encoding="utf-8")
)
DEPLOYMENT, WORKFLOW = FIXTURE["deployment"], FIXTURE["workflow"]
AUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
PARAMS = json.dumps({"6-inputs-text": "A cat sorcerer"})
# The client's camelCase -> snake_case, as transcribed in the fixture.
_SNAKE = re.compile(r"((?<=[a-z0-9])[A-Z]|(?!^)[A-Z](?=[a-z]))")


def snake(key: str) -> str:
    return _SNAKE.sub(r"_\1", key).lower()


@pytest.fixture
def vc(vc_server: tuple[Starlette, str]) -> Iterator[tuple[ViewComfyState, str]]:
    app, url = vc_server
    state = app.state.viewcomfy = ViewComfyState()
    yield state, url
    state.faults.release()


def test_fixture_names_its_source_commits() -> None:
    """The transcription says where it came from."""
    assert DEPLOYMENT["commit"] == "eb629741fd58d042be8a9c30969d5cca405dc523"
    assert WORKFLOW["commit"] == "5c5e433fbe114fdad7b5fcbc1e70a0a5e2f49251"
    assert FIXTURE["source"] == "https://github.com/ViewComfy/cloud-public"


@pytest.mark.parametrize("mode", ["inline", "link"])
async def test_deployment_answer_is_what_the_client_at_eb629741_reads(
    vc: tuple[ViewComfyState, str], http: httpx.AsyncClient, mode: str
) -> None:
    """The client's form (logs, params, workflow_api; credentials as two headers) is
    answered 201 with exactly PromptResult's keys, each output with exactly FileOutput's
    (inline) or S3FileOutput's (link) keys."""
    state, url = vc
    state.outputs = mode  # type: ignore[assignment]
    form = dict.fromkeys(DEPLOYMENT["request"]["form_fields"], "")
    form.update(logs="false", params=PARAMS)
    headers = {h: AUTH[h] for h in DEPLOYMENT["request"]["headers"]}
    r = await http.post(url, data=form, headers=headers)
    assert r.status_code == DEPLOYMENT["success_status"]
    body = r.json()
    assert sorted(body) == sorted(DEPLOYMENT["result_keys"])
    expected = DEPLOYMENT["inline_output_keys" if mode == "inline" else "link_output_keys"]
    assert [sorted(o) for o in body["outputs"]] == [sorted(expected)]


async def test_deployment_stream_uses_the_clients_events(
    vc: tuple[ViewComfyState, str], http: httpx.AsyncClient
) -> None:
    """logs=true: an event stream of only the events the client knows, ending with a
    prompt_result it can read."""
    _, url = vc
    r = await http.post(url, data={"logs": "true", "params": PARAMS}, headers=AUTH)
    assert r.status_code == DEPLOYMENT["success_status"]
    assert r.headers["content-type"].startswith(DEPLOYMENT["stream"]["content_type"])
    events = re.findall(r"^event: (\S+)$", r.text, flags=re.MULTILINE)
    assert set(events) <= set(DEPLOYMENT["stream"]["events"]) and events[-1] == "prompt_result"
    last = r.text.rstrip().rsplit("data: ", 1)[1]
    assert sorted(json.loads(last)) == sorted(DEPLOYMENT["result_keys"])


async def test_workflow_api_answers_what_the_client_at_5c5e433f_reads(
    vc: tuple[ViewComfyState, str], http: httpx.AsyncClient
) -> None:
    """submit -> {"data": PromptScheduled's keys}; poll -> records that, snake_cased and
    stripped of the four keys the client deletes, build PromptResult (required keys, and
    error_data at most), outputs with S3FileOutput's keys, "success" when done; cancel 201."""
    state, url = vc
    state.poll_steps = 2
    submit, poll, cancel = WORKFLOW["submit"], WORKFLOW["poll"], WORKFLOW["cancel"]
    prompt_id = str(uuid.uuid4())
    form = dict.fromkeys(submit["form_fields"], "")
    form.update(prompt_id=prompt_id, view_comfy_api_url="https://vc.example/", params=PARAMS)
    r = await http.post(url + submit["path"], data=form, headers=AUTH)
    assert r.status_code == submit["success_status"]
    assert sorted(r.json()["data"]) == sorted(submit["scheduled_keys"])

    statuses = []
    for _ in range(state.poll_steps):
        r = await http.get(url + poll["path"], params={poll["query"]: [prompt_id]}, headers=AUTH)
        assert r.status_code == poll["success_status"]
        (record,) = r.json()
        parsed: dict[str, Any] = {snake(k): v for k, v in record.items()}
        for key in poll["dropped_keys"]:
            del parsed[key]  # the client's `del`: a missing key would crash it
        allowed = set(poll["result_required"]) | set(poll["result_optional"])
        assert set(poll["result_required"]) <= set(parsed) <= allowed
        outputs = [{snake(k) for k in o} for o in record["outputs"]]
        assert all(o == set(poll["output_keys"]) for o in outputs)
        statuses.append(parsed["status"])
    assert statuses[-1] == poll["done_status"] and statuses[0] != poll["done_status"]
    assert outputs  # the finished record carries its output link

    other = str(uuid.uuid4())
    form.update(prompt_id=other)
    await http.post(url + submit["path"], data=form, headers=AUTH)
    body = dict.fromkeys(cancel["json"], "")
    body.update(prompt_id=other, view_comfy_api_url="https://vc.example/")
    r = await http.post(url + cancel["path"], json=body, headers=AUTH)
    assert r.status_code == cancel["success_status"] and state.cancelled == [other]
