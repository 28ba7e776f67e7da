"""ViewComfy as its authors ship it: outputs as links (fetched without our credentials), the
workflow-API generation (submit, poll, outputs), long runs answered by chains of 303 result
redirects, and a `check` that proves the credentials. Each against the emulator's mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import Serve

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import ViewComfySection
from glimpse_agent.errors import BadResponse, NoAnswer, Rejected, Unauthorized, Unavailable
from glimpse_agent.imaging.backends.viewcomfy import ViewComfyBackend
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.imaging.prepare import sniff_mime
from glimpse_agent.sandbox.images.viewcomfy import (
    CLIENT_ID,
    CLIENT_SECRET,
    ViewComfyState,
    create_bucket_app,
)
from glimpse_agent.sandbox.images.viewcomfy_runs import link_for

REQ = ImageRequest(prompt="a cat sorcerer", persona="aurora")


class VC:
    def __init__(self, state: ViewComfyState, url: str) -> None:
        self.state = state
        self.url = url

    def backend(
        self, http: httpx.AsyncClient, clock: SimulatedClock, **overrides: Any
    ) -> ViewComfyBackend:
        values: dict[str, Any] = {
            "url": self.url,
            "api_url": self.url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "timeout": 10,
            "params": {"3-inputs-steps": 4},
        }
        values.update(overrides)
        return ViewComfyBackend(ViewComfySection.model_validate(values), http=http, clock=clock)


@pytest.fixture
def vc(vc_server: tuple[Starlette, str]) -> Iterator[VC]:
    app, url = vc_server
    state = app.state.viewcomfy = ViewComfyState()
    yield VC(state, url)
    state.faults.release()


@pytest.fixture
async def http() -> Any:
    # As build_router makes it: redirects followed (through http.safe's rules).
    async with httpx.AsyncClient(follow_redirects=True) as client:
        yield client


def recorder() -> tuple[Starlette, list[httpx.Headers]]:
    """A server on another host that records every request it gets."""
    seen: list[httpx.Headers] = []

    async def anything(request: Request) -> JSONResponse:
        seen.append(httpx.Headers(request.headers.raw))
        return JSONResponse({"stolen": True}, status_code=201)

    app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])
    return app, seen


# --------------------------------------------------------------------------- outputs as links


async def test_link_outputs_give_an_image_fetched_without_credentials(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock, serve: Serve
) -> None:
    """A deployment answering outputs as links (filepath, on another host): the image is
    fetched from the bucket, and the bucket saw no ViewComfy credential."""
    vc.state.outputs = "link"
    vc.state.bucket_url = serve(create_bucket_app(vc.state))
    assert vc.state.bucket_url.rsplit(":", 1)[1] != vc.url.rsplit(":", 1)[1]
    image = await vc.backend(http, clock).generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    assert (image.width, image.height) == (512, 512)
    (fetch,) = vc.state.bucket_requests
    assert fetch["credential_headers"] == [] and fetch["name"].endswith(".png")


async def test_the_bucket_refuses_a_request_carrying_the_credentials(
    vc: VC, http: httpx.AsyncClient
) -> None:
    """The emulator's bucket answers 400 to a link sent with client_id/client_secret (as S3
    refuses a second auth mechanism), so the test above can fail."""
    vc.state.files["x.png"] = b"\x89PNG\r\n\x1a\n"
    vc.state.bucket_url = vc.url
    url = link_for(vc.state, None, "x.png")  # type: ignore[arg-type]
    assert "/bucket/x.png?X-Amz-Expires=3600&X-Amz-Signature=" in url
    assert (await http.get(url)).status_code == 200
    r = await http.get(url, headers={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert r.status_code == 400
    assert (await http.get(url.replace("Signature=", "Signature=0"))).status_code == 403


async def test_an_expired_link_is_a_bad_response_not_a_key_refusal(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A link the bucket refuses (expired, 403) fails as BadResponse: our keys were fine."""
    vc.state.outputs = "link"
    vc.state.bucket_url = vc.url + "/nowhere"  # a path the emulator does not serve: 404
    with pytest.raises(BadResponse, match="output link answered"):
        await vc.backend(http, clock).generate(REQ)


async def test_a_link_that_is_not_http_is_refused(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A filepath such as file:///etc/passwd is not fetched."""
    b = vc.backend(http, clock)
    result = {
        "status": "success",
        "outputs": [{"filename": "a.png", "content_type": "image/png", "filepath": "file:///x"}],
    }
    with pytest.raises(BadResponse, match="not http"):
        await b._image_from(result)


# --------------------------------------------------------------------------- workflow API


async def test_workflow_api_submits_polls_and_fetches_the_linked_output(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """api = "workflow": POST /api/workflow/infer with view_comfy_api_url, poll until done
    (three polls, poll_seconds apart on the clock), then the linked image."""
    vc.state.poll_steps = 3
    deployment = "https://viewcomfy--example-comfyui-infer.modal.run"
    before = clock.now()
    with structlog.testing.capture_logs() as logs:
        image = await vc.backend(
            http, clock, api="workflow", url=deployment, poll_seconds=7, timeout=60
        ).generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    (run,) = vc.state.runs
    assert run["api"] == "workflow" and run["view_comfy_api_url"] == deployment
    assert run["params"] == {"3-inputs-steps": 4, "6-inputs-text": "a cat sorcerer"}
    assert vc.state.polls == 3 and (clock.now() - before).total_seconds() == 14
    assert vc.state.bucket_requests[0]["credential_headers"] == []
    assert [e["polls"] for e in logs if e["event"] == "image.polled"] == [3]


async def test_workflow_api_run_that_fails_is_a_backend_failure(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A polled run that ends in status "error" fails as Unavailable with its errorData,
    after one submit (not run again)."""
    vc.state.faults.arm("workflow_error")
    with pytest.raises(Unavailable, match="workflow failed on the server: CUDA"):
        await vc.backend(http, clock, api="workflow").generate(REQ)
    assert len(vc.state.runs) == 1


async def test_workflow_api_gives_up_at_the_timeout_and_cancels(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A run still unfinished when the timeout passes: NoAnswer, and a cancel is sent."""
    vc.state.poll_steps = 1000
    with pytest.raises(NoAnswer, match="still not finished"):
        await vc.backend(http, clock, api="workflow", timeout=30, poll_seconds=5).generate(REQ)
    # Polls at 0, 5, ... 30 s; the next would come after the 30 s timeout.
    assert len(vc.state.cancelled) == 1 and vc.state.polls == 7


async def test_workflow_api_polls_through_passing_failures(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A 503 on a poll does not fail the run: the next poll finds it finished."""
    vc.state.faults.arm("poll_status", status=503, message="busy")
    image = await vc.backend(http, clock, api="workflow").generate(REQ)
    assert image.data is not None and vc.state.polls == 3


async def test_workflow_api_refused_credentials_are_unauthorized(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Wrong keys on submit: Unauthorized, and no run was made."""
    with pytest.raises(Unauthorized):
        await vc.backend(http, clock, api="workflow", client_secret="wrong-9f8e").generate(REQ)
    assert vc.state.runs == []


# --------------------------------------------------------------------------- 303 result chains


async def test_a_chain_of_twelve_result_redirects_succeeds(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A long run answered by 12 "303 See Other" to its result URL (Modal's 150 s web
    timeout, again and again): followed within the timeout, one run, one image."""
    vc.state.result_redirects = 12
    image = await vc.backend(http, clock).generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    assert len(vc.state.runs) == 1 and vc.state.result_fetches == 12


async def test_a_result_redirect_to_another_host_is_refused_with_credentials_unsent(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock, serve: Serve
) -> None:
    """A 303 whose result URL is on another host: Rejected, and that host got nothing."""
    app, seen = recorder()
    vc.state.result_redirects = 2
    vc.state.redirect_host = serve(app)
    with pytest.raises(Rejected, match="another host"):
        await vc.backend(http, clock).generate(REQ)
    assert seen == []


async def test_other_redirect_loops_still_stop_after_ten(clock: SimulatedClock) -> None:
    """Only 303s are a result chain: a 302 loop still ends in Rejected after 10 hops."""
    hops: list[str] = []

    def loop(request: httpx.Request) -> httpx.Response:
        hops.append(str(request.url))
        return httpx.Response(302, headers={"Location": str(request.url)})

    transport = httpx.MockTransport(loop)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        section = ViewComfySection(url="http://vc.test/", client_id="a", client_secret="b")
        with pytest.raises(Rejected, match="more than 10 redirects"):
            await ViewComfyBackend(section, http=client, clock=clock).generate(REQ)
    assert len(hops) == 11  # the first request and ten redirects; a Rejected is not retried


# --------------------------------------------------------------------------- check


async def test_check_with_wrong_credentials_is_not_ok(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """The deployment answers a GET with 405 before any auth (as FastAPI does), yet check
    fails on wrong keys: it proves them with ViewComfy's API, in both generations."""
    headers = {"client_id": "nobody", "client_secret": "wrong"}
    assert (await http.get(vc.url, headers=headers)).status_code == 405
    for api in ("deployment", "workflow"):
        with pytest.raises(Unauthorized):
            await vc.backend(http, clock, api=api, client_secret="wrong-secret-1").check()
        await vc.backend(http, clock, api=api).check()
    assert vc.state.runs == [] and vc.state.jobs == {}


async def test_check_against_something_else_than_viewcomfys_api_fails(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock, serve: Serve
) -> None:
    """An api_url that answers but is not ViewComfy's API: check fails, it does not pass."""
    app, _ = recorder()
    other = serve(app)
    with pytest.raises((BadResponse, Rejected)):
        await vc.backend(http, clock, api_url=other).check()
