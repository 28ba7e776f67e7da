"""ViewComfy, in both generations of its API (``[images.viewcomfy] api``).

``api = "deployment"`` (the default, the first generation): one deployment URL, two calls.

- ``infer``: form POST (``params`` JSON string, ``logs=false``, ``workflow_api``), answered
  by HTTP 201 with ``{prompt_id, status, completed, execution_time_seconds, prompt, outputs}``.
- ``infer_with_logs``: the same POST with ``logs=true``, answered by an SSE stream of
  ``log_message`` / ``error`` events and one final ``prompt_result`` carrying that same JSON.
- A run that outlives the deployment's web timeout (150 s on Modal) is answered "303 See
  Other" to a result URL on the same host, again and again until it ends: we follow that
  chain for as long as ``timeout`` allows, never to another host.

``api = "workflow"``: through ViewComfy's own API, submit then poll
(``viewcomfy_workflow``). Outputs come inline (``data``) or as links (``filepath``), fetched
without our credentials (``viewcomfy_outputs``).

Auth is two literal headers, ``client_id`` and ``client_secret``. Without files the form is
``application/x-www-form-urlencoded``, with files ``multipart/form-data``. Runs can take minutes
(cold starts): timeouts are long, and a timed-out run is not sent again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.config import ViewComfySection
from glimpse_agent.errors import BadResponse, ConfigError, NoAnswer, Problem
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.errors import error_for_response, short_detail, transport_errors
from glimpse_agent.imaging import costs
from glimpse_agent.imaging._http import RetryPolicy, as_content_refusal, with_retries
from glimpse_agent.imaging.backends.viewcomfy_outputs import image_from
from glimpse_agent.imaging.backends.viewcomfy_workflow import WorkflowAPI
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest, ProgressCallback
from glimpse_agent.imaging.prepare import image_size
from glimpse_agent.logs import get_logger

SERVICE = "viewcomfy"
MODEL = "viewcomfy-comfyui"
# A cold start can fail with a 5xx once; more tries would each cost a GPU start.
RETRY = RetryPolicy(attempts=2, base_delay=5.0, retry_unanswered=False)
# ComfyUI progress bars: " 45%|████▌     | 9/20 [00:05<00:06,  1.80it/s]"
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)%\|")
_STEPS = re.compile(r"\|\s*(\d+)/(\d+)")

FileParts = Mapping[str, tuple[str, bytes, str]]  # key -> (filename, content, content type)


def progress_of(line: str) -> float | None:
    """The percentage a ComfyUI log line reports, if it is a progress bar."""
    m = _PERCENT.search(line)
    if m:
        return min(100.0, float(m.group(1)))
    m = _STEPS.search(line)
    if m and int(m.group(2)) > 0:
        return min(100.0, 100.0 * int(m.group(1)) / int(m.group(2)))
    return None


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """``(event, data)`` pairs from SSE lines; multi-line data is joined with newlines."""
    event, data = "message", list[str]()
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue  # an SSE comment (keep-alive)
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


class ViewComfyBackend:
    """``[images.viewcomfy]``: one workflow run per image."""

    name = "viewcomfy"

    def __init__(
        self,
        section: ViewComfySection,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        progress: ProgressCallback | None = None,
        retry: RetryPolicy = RETRY,
    ) -> None:
        self.section = section
        self.http = http
        self.clock = clock
        self.progress = progress
        self.retry = retry
        self.log = get_logger("glimpse_agent.imaging.backends.viewcomfy")
        self._workflow_api = self._load_workflow()
        self.workflow = WorkflowAPI(
            section, http=http, clock=clock, headers=self._headers, retry=retry, log=self.log
        )

    def _load_workflow(self) -> str:
        path = self.section.workflow_api
        if path is None:
            return ""  # the deployed workflow
        try:
            return json.dumps(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            message = f"cannot read {path}: {exc.strerror or exc}"
        except ValueError as exc:
            message = f"{path} is not valid JSON: {exc}"
        raise ConfigError([Problem("agent.toml", "images.viewcomfy.workflow_api", message)])

    def estimated_cost(self) -> float:
        return costs.flat_cost(self.name, self.section.cost_usd)

    def _headers(self) -> dict[str, str]:
        return {
            "client_id": self.section.client_id.get_secret_value(),
            "client_secret": self.section.client_secret.get_secret_value(),
        }

    def params_for(self, request: ImageRequest) -> dict[str, Any]:
        """The flat params of one run: the configured ones, the prompt, and the request's
        seed/size wherever the configured params already name such inputs."""
        params: dict[str, Any] = dict(self.section.params)
        params[self.section.prompt_param] = request.prompt
        hints = {
            "seed": request.seed,
            "noise_seed": request.seed,
            "width": request.width,
            "height": request.height,
        }
        for key in list(params):
            name = key.partition("-inputs-")[2]
            if hints.get(name) is not None:
                params[key] = hints[name]
        return params

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        started = time.perf_counter()
        params = self.params_for(request)
        if self.section.api == "workflow":
            result = await self.run(params)  # submit retries itself; polls outlast failures
        else:
            result = await with_retries(
                lambda: self.run(params),
                policy=self.retry,
                sleep=self.clock.sleep,
                log=self.log,
                backend=self.name,
            )
        done = time.perf_counter()
        data, mime = await self._image_from(result)
        size = image_size(data)
        timings = {"request": done - started, "total": time.perf_counter() - started}
        if isinstance(result.get("execution_time_seconds"), int | float):
            timings["execution"] = float(result["execution_time_seconds"])
        return GeneratedImage(
            backend=self.name,
            model=MODEL,
            prompt=request.prompt,
            data=data,
            mime_type=mime,
            width=size[0] if size else None,
            height=size[1] if size else None,
            cost_usd=self.estimated_cost(),
            timings=timings,
        )

    async def _image_from(self, result: Mapping[str, Any]) -> tuple[bytes, str]:
        return await image_from(result, http=self.http, clock=self.clock, log=self.log)

    async def run(
        self, params: Mapping[str, Any], files: FileParts | None = None
    ) -> dict[str, Any]:
        """One run with ``params`` (and file parts), in the configured generation: the prompt
        result (snake_case keys either way)."""
        form = {
            "params": json.dumps(dict(params)),
            "logs": "true" if self.section.logs else "false",
            "workflow_api": self._workflow_api,
        }
        if self.section.api == "workflow":
            return await self.workflow.run(form, files)
        return await self._run_deployment(form, files)

    async def _run_deployment(
        self, form: Mapping[str, str], files: FileParts | None
    ) -> dict[str, Any]:
        """One ``infer`` (or ``infer_with_logs`` when ``logs`` is on): the prompt result."""
        parts = [(key, part) for key, part in (files or {}).items()] or None
        timeout = httpx.Timeout(self.section.timeout, connect=30.0)
        with transport_errors(SERVICE, secrets=self._headers().values()):
            response = await safe_http.send(
                self.http,
                "POST",
                self.section.url,
                service=SERVICE,
                stream=self.section.logs,
                # A long run is answered 303 to its result URL, again and again.
                result_chain=True,
                data=dict(form),
                files=parts,
                headers=self._headers(),
                timeout=timeout,
                # The run's own deadline, not the 30 s connect's: a log stream that never
                # brings its prompt_result ends within it too.
                deadline=safe_http.deadline_for(self.section.timeout),
            )
            if not self.section.logs:
                return self._result_from_body(response)
            try:
                if response.status_code != 201 or "text/event-stream" not in response.headers.get(
                    "content-type", ""
                ):
                    await safe_http.read_capped(response, service=SERVICE)
                    return self._result_from_body(response)
                return await self._consume(response)
            finally:
                await response.aclose()

    def _result_from_body(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 201:
            raise as_content_refusal(error_for_response(response, service=SERVICE))
        try:
            body = response.json()
        except ValueError as exc:
            raise BadResponse("infer did not answer JSON", service=SERVICE) from exc
        if not isinstance(body, dict):
            raise BadResponse("infer answered something other than an object", service=SERVICE)
        return body

    async def _consume(self, response: httpx.Response) -> dict[str, Any]:
        last = -1.0
        async for event, data in sse_events(response.aiter_lines()):
            if event == "prompt_result":
                try:
                    result = json.loads(data)
                except ValueError as exc:
                    raise BadResponse("prompt_result is not JSON", service=SERVICE) from exc
                if not isinstance(result, dict):
                    raise BadResponse("prompt_result is not an object", service=SERVICE)
                return result
            if event == "error":
                # Not fatal: ComfyUI reports recoverable trouble here and carries on.
                self.log.warning("image.log_error", backend=self.name, message=short_detail(data))
            elif event == "log_message":
                percent = progress_of(data)
                if percent is None:
                    continue
                if self.progress is not None:
                    self.progress(percent, data)
                if percent < last:
                    last = -1.0  # a new progress bar (next sampler) starts from zero
                if int(percent // 25) > int(last // 25):
                    self.log.info("image.progress", backend=self.name, percent=round(percent))
                last = percent
        raise NoAnswer("the log stream ended without a prompt_result", service=SERVICE)

    async def check(self) -> None:
        """The credentials are accepted, proved by a free call to ViewComfy's API (listing a
        prompt id that cannot exist), and with ``api = "deployment"`` the deployment URL
        answers. A deployment itself cannot prove them: FastAPI answers a GET on its POST
        route with 405 before any auth, and only a (billed) run checks them."""
        if self.section.api == "deployment":
            with transport_errors(SERVICE, secrets=self._headers().values()):
                response = await safe_http.send(
                    self.http,
                    "GET",
                    self.section.url,
                    service=SERVICE,
                    headers=self._headers(),
                    timeout=httpx.Timeout(60.0, connect=30.0),
                )
            if response.status_code in (401, 403, 404) or response.status_code >= 500:
                raise as_content_refusal(error_for_response(response, service=SERVICE))
        await self.workflow.verify_credentials()
