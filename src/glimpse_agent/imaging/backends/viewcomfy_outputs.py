"""The image in a ViewComfy prompt result, whichever way its files come.

A result's ``outputs`` are ``{filename, content_type, size}`` plus either ``data`` (the file,
base64) or ``filepath`` (a link to it, an S3 URL on another host): ViewComfy's own client and
``cursor_rule.md`` (``ViewComfy/cloud-public``) show both. A link is fetched **without** the
ViewComfy credentials: it is a presigned storage URL, it needs none, and our keys never go to
a host that is not ViewComfy's. Its body is read with a cap, like every answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.errors import BadResponse, Unavailable
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.errors import error_for_response, transport_errors
from glimpse_agent.imaging._http import RetryPolicy, RunFailed, with_retries
from glimpse_agent.imaging.prepare import sniff_mime

SERVICE = "viewcomfy"
#: An output file bigger than this is not an image we can post (Glimpse takes 10 MB; the
#: rest is re-encoding headroom).
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
#: A link that fails with a 5xx or a dropped connection is fetched again: the run is done
#: and paid for, only the download failed.
LINK_RETRY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=5.0)
LINK_TIMEOUT = httpx.Timeout(120.0, connect=30.0)


def failed_run(result: Mapping[str, Any]) -> RunFailed | None:
    """The run's own failure, if the result says it failed."""
    if str(result.get("status", "")).lower() not in {"error", "failed", "failure"}:
        return None
    detail = result.get("error_data")
    reason = f": {str(detail)[:200]}" if detail else ""
    return RunFailed(f"the workflow failed on the server{reason}", service=SERVICE)


def _is_image(output: Mapping[str, Any]) -> bool:
    declared = str(output.get("content_type", ""))
    return not declared or declared.startswith("image/")


def _inline(output: Mapping[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(output.get("data", "")), validate=True)
    except binascii.Error as exc:
        raise BadResponse("an output is not valid base64", service=SERVICE) from exc


async def fetch_link(http: httpx.AsyncClient, url: str, *, clock: Clock, log: Any) -> bytes:
    """The file behind an output link: no credential sent, the body capped, a passing failure
    tried again (``LINK_RETRY``)."""
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL as exc:
        raise BadResponse("an output link is not a URL", service=SERVICE) from exc
    if scheme not in {"http", "https"}:
        raise BadResponse(
            f"an output link is not http(s) ({scheme or 'no scheme'})", service=SERVICE
        )

    async def once() -> bytes:
        with transport_errors(SERVICE):
            response = await safe_http.send(
                http,
                "GET",
                url,
                service=SERVICE,
                public=True,  # carries no credential: a storage link may redirect to a CDN
                max_bytes=MAX_OUTPUT_BYTES,
                timeout=LINK_TIMEOUT,
                where="output link",
            )
        if response.status_code != 200:
            error = error_for_response(response, service=SERVICE)
            if isinstance(error, Unavailable):
                raise error
            # An expired or refused link: the run cannot be fetched again by asking again.
            raise BadResponse(f"the output link answered {error.message}", service=SERVICE)
        return response.content

    return await with_retries(
        once, policy=LINK_RETRY, sleep=clock.sleep, log=log, backend=f"{SERVICE}.output"
    )


async def image_from(
    result: Mapping[str, Any], *, http: httpx.AsyncClient, clock: Clock, log: Any
) -> tuple[bytes, str]:
    """The first image among ``result``'s outputs, inline or linked, with its MIME type from
    its bytes."""
    failure = failed_run(result)
    if failure is not None:
        # The run itself failed (missing model, out of memory...): not retried here, the
        # same run would most likely fail the same way; the router may try another backend.
        raise failure
    outputs = result.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise BadResponse("the run finished with no outputs", service=SERVICE)
    for output in outputs:
        if not isinstance(output, dict) or not _is_image(output):
            continue
        size = output.get("size")
        if isinstance(size, int) and size > MAX_OUTPUT_BYTES:
            continue
        if output.get("data"):
            data = _inline(output)
        elif isinstance(output.get("filepath"), str) and output["filepath"]:
            data = await fetch_link(http, output["filepath"], clock=clock, log=log)
        else:
            continue
        mime = sniff_mime(data)
        if mime is not None:
            return data, mime
    raise BadResponse("the run produced no image output", service=SERVICE)
