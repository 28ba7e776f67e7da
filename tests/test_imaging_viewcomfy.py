"""The ViewComfy backend (infer and infer_with_logs) against the ViewComfy emulator, and the
workflow parameter flattener."""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette

from glimpse_agent import cli
from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import ViewComfySection
from glimpse_agent.errors import BadResponse, ConfigError, Rejected, Unauthorized, Unavailable
from glimpse_agent.imaging.backends.viewcomfy import ViewComfyBackend, progress_of
from glimpse_agent.imaging.backends.viewcomfy_params import flatten, main, split_key
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.imaging.prepare import sniff_mime
from glimpse_agent.imaging.progress import ProgressBar, render
from glimpse_agent.sandbox.images.viewcomfy import (
    CLIENT_ID,
    CLIENT_SECRET,
    ViewComfyState,
    default_workflow,
)

REQ = ImageRequest(prompt="a cat sorcerer", persona="aurora")


class VC:
    def __init__(self, state: ViewComfyState, url: str) -> None:
        self.state = state
        self.url = url

    def section(self, **overrides: Any) -> ViewComfySection:
        values: dict[str, Any] = {
            "url": self.url,
            "api_url": self.url,  # the emulator serves ViewComfy's API too
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "timeout": 5,
            "params": {"3-inputs-steps": 4},
        }
        values.update(overrides)
        return ViewComfySection.model_validate(values)


@pytest.fixture
def vc(vc_server: tuple[Starlette, str]) -> Iterator[VC]:
    app, url = vc_server
    state = app.state.viewcomfy = ViewComfyState()
    yield VC(state, url)
    state.faults.release()


def backend(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock, progress: Any = None, **overrides: Any
) -> ViewComfyBackend:
    return ViewComfyBackend(vc.section(**overrides), http=http, clock=clock, progress=progress)


async def test_infer_returns_png_bytes(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """infer: a urlencoded form with params/logs/workflow_api, 201 JSON, base64 PNG decoded."""
    image = await backend(vc, http, clock).generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    assert image.mime_type == "image/png" and (image.width, image.height) == (512, 512)
    assert image.cost_usd == 0.02 and image.timings["execution"] == 1.5
    (run,) = vc.state.runs
    assert run["content_type"].startswith("application/x-www-form-urlencoded")
    assert run["params"] == {"3-inputs-steps": 4, "6-inputs-text": "a cat sorcerer"}
    assert run["logs"] is False and run["workflow_api"] is False


async def test_request_seed_and_size_fill_configured_params(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A request's seed/width/height replace configured params that name those inputs."""
    params = {"3-inputs-seed": 1, "5-inputs-width": 512, "5-inputs-height": 512}
    req = ImageRequest(prompt="x", seed=7, width=256, height=128)
    image = await backend(vc, http, clock, params=params).generate(req)
    assert vc.state.runs[0]["params"]["3-inputs-seed"] == 7
    assert (image.width, image.height) == (256, 128)


async def test_infer_with_logs_reports_progress(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """infer_with_logs: progress bars reach the callback and are logged at every 25 %."""
    seen: list[float] = []
    with structlog.testing.capture_logs() as logs:
        image = await backend(
            vc, http, clock, progress=lambda p, _line: seen.append(p), logs=True
        ).generate(REQ)
    assert image.data is not None and vc.state.runs[0]["logs"] is True
    assert seen[0] == 0 and seen[-1] == 100 and len(seen) == 21
    logged = [e["percent"] for e in logs if e["event"] == "image.progress"]
    assert logged == [0, 25, 50, 75, 100]


async def test_stream_error_event_is_not_fatal(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """An "error" event in the stream is logged and the run still succeeds."""
    vc.state.faults.arm("log_error")
    with structlog.testing.capture_logs() as logs:
        image = await backend(vc, http, clock, logs=True).generate(REQ)
    assert image.data is not None
    assert any(e["event"] == "image.log_error" for e in logs)


async def test_stream_cut_before_prompt_result_is_unavailable(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A stream that ends without prompt_result fails as Unavailable and is not run again."""
    vc.state.faults.arm("cut_stream")
    with pytest.raises(Unavailable, match="prompt_result"):
        await backend(vc, http, clock, logs=True).generate(REQ)
    assert len(vc.state.runs) == 1


@pytest.mark.parametrize("logs", [False, True])
async def test_connection_dropped_mid_answer_is_not_rerun(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock, logs: bool
) -> None:
    """The run happened but its answer (JSON, or the log stream) broke off: Unavailable, and
    the workflow is not run a second time (it may be billed)."""
    seen: list[float] = []
    vc.state.faults.arm("cut", times=2)
    with pytest.raises(Unavailable, match="dropped"):
        await backend(
            vc, http, clock, progress=lambda p, _line: seen.append(p), logs=logs
        ).generate(REQ)
    assert len(vc.state.runs) == 1 and len(vc.state.faults._queue) == 1
    if logs:
        assert seen and max(seen) < 100  # progress was surfaced until the cut


async def test_error_in_a_success_status_is_a_failure_not_rerun(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A 201 holding only an error detail, and a 200 (ViewComfy answers 201), both fail
    without a second request."""
    vc.state.faults.arm("error_200", message="CUDA out of memory")
    with pytest.raises(BadResponse, match="no outputs"):
        await backend(vc, http, clock).generate(REQ)
    vc.state.faults.arm("status", status=200, message="queued")
    with pytest.raises(Rejected, match="HTTP 200"):
        await backend(vc, http, clock).generate(REQ)
    assert vc.state.faults._queue == deque()


async def test_workflow_error_is_unavailable_and_not_rerun(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A 201 with status "error" fails (Unavailable) without a second run, in both modes."""
    for logs in (False, True):
        vc.state.faults.arm("workflow_error")
        with pytest.raises(Unavailable, match="workflow failed"):
            await backend(vc, http, clock, logs=logs).generate(REQ)
    assert len(vc.state.runs) == 2


async def test_bad_credentials_are_unauthorized(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Wrong client_secret: 401 -> Unauthorized, and the secret is not in the message."""
    with pytest.raises(Unauthorized) as info:
        await backend(vc, http, clock, client_secret="wrong-secret-xyz").generate(REQ)
    assert "wrong-secret" not in str(info.value)


async def test_unknown_param_is_rejected(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A prompt_param naming no input of the workflow: 422 -> Rejected with the server's detail."""
    with pytest.raises(Rejected, match="unknown parameter 99-inputs-text"):
        await backend(vc, http, clock, prompt_param="99-inputs-text").generate(REQ)


async def test_cold_start_5xx_is_retried_once(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """One 503 (a cold start) is retried after a simulated backoff; the second run succeeds."""
    vc.state.faults.arm("status", status=503)
    before = clock.now()
    image = await backend(vc, http, clock).generate(REQ)
    assert image.data is not None and (clock.now() - before).total_seconds() == 5


async def test_429_twice_gives_up_rate_limited(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Two 429s exhaust the two tries and surface as a rate limit carrying Retry-After."""
    from glimpse_agent.errors import RateLimited

    vc.state.faults.arm("status", status=429, retry_after=3, times=2)
    with pytest.raises(RateLimited) as info:
        await backend(vc, http, clock).generate(REQ)
    assert info.value.retry_after == 3


async def test_timeout_is_not_retried(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A run that does not answer in time fails once (Unavailable): it may still be billed."""
    vc.state.faults.arm("hang", seconds=5, times=2)
    with pytest.raises(Unavailable, match="timed out"):
        await backend(vc, http, clock, timeout=0.1).generate(REQ)
    assert len(vc.state.faults._queue) == 1


async def test_workflow_override_is_sent(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock, tmp_path: Path
) -> None:
    """workflow_api = file sends that workflow (as a JSON string) and the server runs it."""
    workflow = default_workflow()
    workflow["5"]["inputs"].update(width=320, height=200)
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(workflow))
    image = await backend(vc, http, clock, workflow_api=path).generate(REQ)
    assert vc.state.runs[0]["workflow_api"] is True
    assert (image.width, image.height) == (320, 200)


def test_unreadable_workflow_override_is_a_config_error(vc: VC, tmp_path: Path) -> None:
    """A workflow_api file that is not JSON fails at construction with a ConfigError."""
    path = tmp_path / "workflow_api.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="workflow_api"):
        ViewComfyBackend(
            vc.section(workflow_api=path),
            http=httpx.AsyncClient(),
            clock=SimulatedClock(utc(2026, 1, 1)),
        )


async def test_files_go_multipart(vc: VC, http: httpx.AsyncClient, clock: SimulatedClock) -> None:
    """With a file part the form is multipart/form-data, the file named by its param key."""
    result = await backend(vc, http, clock).run(
        {"6-inputs-text": "x"}, files={"52-inputs-image": ("in.png", b"\x89PNG....", "image/png")}
    )
    assert result["status"] == "success"
    (run,) = vc.state.runs
    assert run["content_type"].startswith("multipart/form-data")
    assert run["files"] == {"52-inputs-image": 8}


async def test_emulator_refuses_empty_params_and_labels(vc: VC, http: httpx.AsyncClient) -> None:
    """The emulator answers 422 to empty params and to label keys sent as params."""
    headers = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    r = await http.post(vc.url, data={"params": "{}", "logs": "false"}, headers=headers)
    assert r.status_code == 422
    label = json.dumps({"_6-node-class_type-info": "CLIP"})
    r = await http.post(vc.url, data={"params": label, "logs": "false"}, headers=headers)
    assert r.status_code == 422 and "label" in r.json()["detail"]


async def test_check_probes_the_deployment(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """check() passes when the URL answers (405 to a GET, before any auth) and ViewComfy's
    API accepts the credentials; it fails on refused credentials."""
    await backend(vc, http, clock).check()
    with pytest.raises(Unauthorized):
        await backend(vc, http, clock, client_id="someone-else").check()


async def test_check_on_unreachable_url_is_unavailable(
    http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """check() against a port nobody listens on fails as Unavailable."""
    section = ViewComfySection(url="http://127.0.0.1:9", client_id="a", client_secret="b")
    with pytest.raises(Unavailable):
        await ViewComfyBackend(section, http=http, clock=clock).check()


@pytest.mark.parametrize(
    ("line", "percent"),
    [
        (" 45%|████▌     | 9/20 [00:05<00:06,  1.80it/s]", 45.0),
        ("100%|██████████| 20/20 [00:10<00:00,  2.00it/s]", 100.0),
        ("|          | 5/20 [00:02<?, ?it/s]", 25.0),
        ("got prompt", None),
        ("Prompt executed in 2026-03-01 12:00", None),
    ],
)
def test_progress_is_read_from_comfyui_bars(line: str, percent: float | None) -> None:
    """A ComfyUI progress bar gives its percentage; other log lines give none."""
    assert progress_of(line) == percent


def test_flatten_matches_the_parameter_maker() -> None:
    """flatten gives "<node>-inputs-<name>" keys and "_<node>-node-class_type-info" labels."""
    flat = flatten(default_workflow())
    assert flat["_6-node-class_type-info"] == "CLIP Text Encode (Prompt)"
    assert flat["_11-node-class_type-info"] == "DualCLIPLoader"  # no title: the class
    assert flat["6-inputs-text"] == "a lighthouse at dawn"
    assert flat["6-inputs-clip"] == ["11", 0]
    assert split_key("6-inputs-clip_name-inputs-x") == ("6", "clip_name-inputs-x")


def test_params_command_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main([file]) prints the flat params as JSON and exits 0; a bad file exits 2."""
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(default_workflow()))
    assert main([str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["3-inputs-seed"] == 42
    path.write_text('{"not": "a workflow"}')
    assert main([str(path)]) == 2
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


async def test_no_image_output_is_a_bad_response(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A result whose outputs hold no image (e.g. only a video) is a BadResponse."""
    b = backend(vc, http, clock)
    with pytest.raises(BadResponse, match="no image"):
        await b._image_from(
            {
                "status": "success",
                "outputs": [
                    {"filename": "a.mp4", "content_type": "video/mp4", "data": "AAAA", "size": 3}
                ],
            }
        )
    with pytest.raises(BadResponse, match="no outputs"):
        await b._image_from({"status": "success", "outputs": []})


def test_params_command_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`glimpse-agent viewcomfy-params workflow_api.json` prints the flat params, exit 0."""
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(default_workflow()))
    assert cli.main(["viewcomfy-params", str(path)]) == 0
    flat = json.loads(capsys.readouterr().out)
    assert flat["6-inputs-text"] == "a lighthouse at dawn"
    assert flat["_52-node-class_type-info"] == "Load Image"
    assert cli.main(["viewcomfy-params", str(tmp_path / "missing.json")]) == 2


async def test_progress_bar_draws_the_stream_progress(
    vc: VC, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """The interactive progress bar, fed by infer_with_logs, redraws one line up to 100 %."""
    out = io.StringIO()
    bar = ProgressBar(out, force=True)
    await backend(vc, http, clock, progress=bar, logs=True).generate(REQ)
    bar.finish()
    frames = out.getvalue().split("\r")[1:]
    assert frames[0] == render(0) and frames[-1] == render(100) + "\n"
    assert len(frames) == 21  # one redraw per step of the 20-step bar


def test_progress_bar_stays_silent_off_a_terminal() -> None:
    """Into a pipe or a log file (not a terminal) the bar writes nothing."""
    out = io.StringIO()
    bar = ProgressBar(out)
    bar(50.0, " 50%|█████     | 10/20")
    bar.finish()
    assert out.getvalue() == ""
    assert render(30) == "image [#########.....................]  30%"
