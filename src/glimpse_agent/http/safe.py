"""Two guards every adapter's HTTP request goes through, whatever client it was handed.

- Redirects are followed here, not by ``httpx``: ``httpx`` strips only ``Authorization`` when a
  redirect leaves the origin, so our other credential headers (ViewComfy's ``client_secret``,
  Langflow's ``x-api-key``, Glimpse's ``X-Image-Key``) and a 307's body (a provider key being
  stored) would go to whatever host the ``Location`` names. Same-origin redirects (and http ->
  https on the same host) are followed as the client allows; any other is refused, unless the
  request is ``public`` (it carries no credential: an image download sent on to a CDN).
- Bodies are read with a size cap: a server streaming gigabytes must not fill the memory.
"""

from __future__ import annotations

from typing import Any

import httpx

from glimpse_agent.errors import BadResponse, Rejected

MAX_REDIRECTS = 10
# JSON answers (Glimpse, Glif, Langflow) are kilobytes; ViewComfy's carry base64 images.
MAX_BODY_BYTES = 128 * 1024 * 1024


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


def _may_follow(start: httpx.URL, target: httpx.URL) -> bool:
    if _origin(start) == _origin(target):
        return True
    # http -> https on the same host (and default ports): what httpx also trusts.
    return (
        start.scheme == "http"
        and target.scheme == "https"
        and start.host == target.host
        and start.port in (None, 80)
        and target.port in (None, 443)
    )


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    stream: bool = False,
    public: bool = False,
    max_bytes: int = MAX_BODY_BYTES,
    **kwargs: Any,
) -> httpx.Response:
    """``http.request(method, url, **kwargs)`` with the guards above. With ``stream`` the body
    is left unread (read it with ``read_capped``; close the response). ``public``: the request
    carries no credential, so redirects may lead to any host. ``httpx`` errors pass through for
    the caller to translate (``errors.transport_errors``); a refused redirect or an oversized
    body raises ours."""
    request = http.build_request(method, url, **kwargs)
    start = request.url
    for _ in range(MAX_REDIRECTS + 1):
        response = await http.send(request, follow_redirects=False, stream=True)
        following = response.next_request if http.follow_redirects else None
        if following is None:
            if not stream:
                try:
                    await read_capped(response, max_bytes, service=service)
                finally:
                    await response.aclose()
            return response
        await response.aclose()
        if not public and not _may_follow(start, following.url):
            raise Rejected(
                f"{method} {start.scheme}://{start.netloc.decode('ascii')}{start.path} was "
                "redirected to "
                f"another host ({following.url.host}); not following with our credentials: "
                "point the configured URL at the final address",
                service=service,
                status=response.status_code,
            )
        request = following
    raise Rejected(f"{method}: more than {MAX_REDIRECTS} redirects", service=service)


async def read_capped(
    response: httpx.Response, max_bytes: int = MAX_BODY_BYTES, *, service: str
) -> bytes:
    """The body of a streamed ``response``, at most ``max_bytes`` of it (else ``BadResponse``).
    Afterwards ``response.content`` / ``.json()`` work as after ``aread()``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BadResponse(
            f"the answer is too large ({declared} bytes > {max_bytes})",
            service=service,
            status=response.status_code,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BadResponse(
                f"the answer is too large (over {max_bytes} bytes)",
                service=service,
                status=response.status_code,
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    response._content = body  # what aread() would have stored: .content/.json()/.text work
    return body
