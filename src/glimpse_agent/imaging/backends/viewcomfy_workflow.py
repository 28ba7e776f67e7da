"""ViewComfy's workflow API (the generation its official examples use since August 2025):
our request goes to ViewComfy's own API, which runs it on the deployment and keeps its result.

- submit: ``POST {api_url}/api/workflow/infer``, form ``prompt_id`` (made by the client),
  ``view_comfy_api_url`` (the deployment's endpoint), ``params``, ``workflow_api``, file parts;
  answered 201 ``{"data": {"prompt_id", "message", "workflow"}}``.
- poll: ``GET {api_url}/api/workflow/infer/?prompt_ids=ID``, answered 200 with a list of
  camelCase records (``promptId``, ``status``, ``completed``, ``executionTimeSeconds``,
  ``prompt``, ``outputs`` of ``{filename, contentType, filepath, size}``, ``errorData``,
  ``createdAt``, ``workflow``, ``clientId``, ``user``). ``status == "success"`` is done.
- cancel: ``POST {api_url}/api/workflow/infer/cancel`` with JSON ``{prompt_id,
  view_comfy_api_url}``; we send it, best effort, when we stop waiting.

Same ``client_id`` / ``client_secret`` headers as the deployment call. The official client
also offers a socket.io stream of logs; we poll instead (no socket dependency, and a restart
loses nothing the poll cannot find again).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.config import ViewComfySection
from glimpse_agent.errors import BadResponse, NoAnswer, RateLimited, ServiceError, Unavailable
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.errors import error_for_response, short_detail, transport_errors
from glimpse_agent.imaging._http import RetryPolicy, as_content_refusal, with_retries

SERVICE = "viewcomfy"
SUBMIT = "/api/workflow/infer"
POLL = "/api/workflow/infer/"
CANCEL = "/api/workflow/infer/cancel"
POLL_TIMEOUT = httpx.Timeout(60.0, connect=30.0)
#: Statuses that end a run without success. The sources show only "success" (done) and
#: "anything else: still running"; these are our reading of a finished failure.
FAILED = frozenset({"error", "failed", "failure", "canceled", "cancelled"})

FileParts = Mapping[str, tuple[str, bytes, str]]
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(key: str) -> str:
    """``executionTimeSeconds`` -> ``execution_time_seconds`` (the records are camelCase)."""
    return _CAMEL.sub(r"_\1", key).lower()


def result_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A poll record in the shape of a deployment's prompt result (snake_case keys, outputs
    included)."""
    result = {snake(k): v for k, v in record.items()}
    outputs = record.get("outputs")
    if isinstance(outputs, list):
        result["outputs"] = [
            {snake(k): v for k, v in o.items()} if isinstance(o, dict) else o for o in outputs
        ]
    return result


def finished(result: Mapping[str, Any]) -> bool:
    """Whether a polled run has ended, in success or not."""
    status = str(result.get("status", "")).lower()
    return status == "success" or status in FAILED or result.get("completed") is True


class WorkflowAPI:
    """One run through ViewComfy's API: submit, poll until it ends or ``timeout`` passes."""

    def __init__(
        self,
        section: ViewComfySection,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        headers: Callable[[], dict[str, str]],
        retry: RetryPolicy,
        log: Any,
    ) -> None:
        self.section = section
        self.http = http
        self.clock = clock
        self.headers = headers
        self.retry = retry
        self.log = log
        self.base = section.api_url.rstrip("/")

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with transport_errors(SERVICE, secrets=self.headers().values()):
            return await safe_http.send(
                self.http,
                method,
                self.base + path,
                service=SERVICE,
                headers=self.headers(),
                where=f"{method} {path}",
                **kwargs,
            )

    async def run(self, form: Mapping[str, str], files: FileParts | None = None) -> dict[str, Any]:
        """The finished run's result (snake_case, like a deployment's), or our error."""
        prompt_id = await self.submit(form, files)
        started = self.clock.now()
        polls = 0
        while True:
            result = await self.poll(prompt_id)
            polls += 1
            if result is not None and finished(result):
                self.log.info("image.polled", backend=SERVICE, polls=polls, prompt_id=prompt_id)
                return result
            waited = (self.clock.now() - started).total_seconds()
            if waited + self.section.poll_seconds > self.section.timeout:
                await self.cancel(prompt_id)
                raise NoAnswer(
                    f"run {prompt_id} still not finished after {waited:.0f} s; cancelled",
                    service=SERVICE,
                )
            await self.clock.sleep(self.section.poll_seconds)

    async def submit(self, form: Mapping[str, str], files: FileParts | None) -> str:
        prompt_id = str(uuid.uuid4())
        data = {
            "prompt_id": prompt_id,
            "view_comfy_api_url": self.section.url,
            "params": form["params"],
            "workflow_api": form.get("workflow_api", ""),
        }
        parts = [(key, part) for key, part in (files or {}).items()] or None

        async def once() -> httpx.Response:
            response = await self._send(
                "POST",
                SUBMIT,
                data=data,
                files=parts,
                timeout=httpx.Timeout(120.0, connect=30.0),
            )
            if response.status_code != 201:
                raise as_content_refusal(error_for_response(response, service=SERVICE))
            return response

        response = await with_retries(
            once, policy=self.retry, sleep=self.clock.sleep, log=self.log, backend=SERVICE
        )
        try:
            body = response.json()
        except ValueError as exc:
            raise BadResponse("infer did not answer JSON", service=SERVICE) from exc
        scheduled = body.get("data") if isinstance(body, dict) else None
        if not isinstance(scheduled, dict):
            raise BadResponse("infer answered without its data", service=SERVICE)
        answered = scheduled.get("prompt_id")
        return answered if isinstance(answered, str) and answered else prompt_id

    async def poll(self, prompt_id: str) -> dict[str, Any] | None:
        """The run's record as a result, or None while ViewComfy does not list it (yet) or a
        poll failed for a passing reason (the run goes on either way)."""
        try:
            response = await self._send(
                "GET", POLL, params={"prompt_ids": [prompt_id]}, timeout=POLL_TIMEOUT
            )
        except (Unavailable, RateLimited) as exc:
            self.log.info("image.poll_failed", backend=SERVICE, error=str(exc))
            return None
        if response.status_code != 200:
            error = error_for_response(response, service=SERVICE)
            if isinstance(error, Unavailable | RateLimited):
                self.log.info("image.poll_failed", backend=SERVICE, error=str(error))
                return None
            raise error
        try:
            records = response.json()
        except ValueError as exc:
            raise BadResponse("the poll did not answer JSON", service=SERVICE) from exc
        if not isinstance(records, list):
            raise BadResponse("the poll answered something other than a list", service=SERVICE)
        for record in records:
            if isinstance(record, dict) and record.get("promptId", prompt_id) == prompt_id:
                return result_of(record)
        return None

    async def cancel(self, prompt_id: str) -> None:
        """Ask ViewComfy to stop the run (it is billed while it runs); failures only logged."""
        try:
            response = await self._send(
                "POST",
                CANCEL,
                json={"prompt_id": prompt_id, "view_comfy_api_url": self.section.url},
                timeout=POLL_TIMEOUT,
            )
            if response.status_code not in (200, 201):
                raise error_for_response(response, service=SERVICE)
        except ServiceError as exc:
            self.log.warning("image.cancel_failed", backend=SERVICE, error=str(exc))
            return
        self.log.info("image.cancelled", backend=SERVICE, prompt_id=prompt_id)

    async def verify_credentials(self) -> None:
        """A free call that only works with valid keys: list an id that cannot exist. Raises
        ``Unauthorized`` for refused keys, our other errors when the API cannot be reached."""
        response = await self._send(
            "GET", POLL, params={"prompt_ids": [f"check-{uuid.uuid4()}"]}, timeout=POLL_TIMEOUT
        )
        if response.status_code != 200:
            raise error_for_response(response, service=SERVICE)
        try:
            body = response.json()
        except ValueError as exc:
            raise BadResponse(
                f"{self.base}{POLL} did not answer JSON: is api_url ViewComfy's API?",
                service=SERVICE,
            ) from exc
        if not isinstance(body, list):
            raise BadResponse(
                f"{self.base}{POLL} answered {short_detail(json.dumps(body))}, not a list",
                service=SERVICE,
            )
