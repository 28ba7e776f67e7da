"""Three guards every adapter's HTTP request goes through, whatever client it was handed.

- Redirects are followed here, not by ``httpx``: ``httpx`` strips only ``Authorization`` when a
  redirect leaves the origin, so our other credential headers (ViewComfy's ``client_secret``,
  Langflow's ``x-api-key``, Glimpse's ``X-Image-Key``) and a 307's body (a provider key being
  stored) would go to whatever host the ``Location`` names. Same-origin redirects (and http ->
  https on the same host) are followed as the client allows; any other is refused, unless the
  request is ``public`` (it carries no credential: an image download sent on to a CDN).
- A ``result_chain`` request (a long run on a host that answers "303 See Other, ask again
  here" each time its web timeout passes, as Modal does for ViewComfy deployments every
  150 s) follows same-origin 303s for as long as its deadline allows, not ``MAX_REDIRECTS``.
- Bodies are read with a size cap: a server streaming gigabytes must not fill the memory.
- Every request has a deadline, the whole of it: connecting, sending, and every chunk of the
  answer, also when the caller reads a streamed answer itself. ``httpx``'s timeouts limit each
  step (the gap between two chunks), never their sum, so an answer trickling one byte per read
  timeout would hold the caller, and the action lock with it, forever. When the deadline
  passes, the caller gets ``NoAnswer``: the request went out and may have been carried out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from glimpse_agent.errors import BadResponse, NoAnswer, Rejected
from glimpse_agent.http.errors import timed_out

MAX_REDIRECTS = 10
#: A result chain's hops are bounded by its deadline; this only stops a server that answers
#: 303 at once, again and again, from being asked thousands of times a second.
MAX_RESULT_HOPS = 1000
# JSON answers (Glimpse, Glif, Langflow) are kilobytes; ViewComfy's carry base64 images.
MAX_BODY_BYTES = 128 * 1024 * 1024
#: A request's whole deadline is this many times its longest ``httpx`` timeout: a slow connect
#: and a slow answer both fit, a trickle that never ends does not.
DEADLINE_FACTOR = 2.0
#: The deadline of a request whose client sets no timeout at all.
DEFAULT_DEADLINE = 300.0

Timeout = float | httpx.Timeout | None


def deadline_for(timeout: Timeout) -> float:
    """The whole-request deadline, in seconds, of a request sent with ``timeout`` (a number,
    an ``httpx.Timeout``, or ``None`` for none): ``DEADLINE_FACTOR`` times its longest part."""
    if isinstance(timeout, httpx.Timeout):
        parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
        longest = max(parts, default=None)
    else:
        longest = timeout
    return DEADLINE_FACTOR * longest if longest and longest > 0 else DEFAULT_DEADLINE


class _Deadlined(httpx.AsyncByteStream):
    """An answer's body stream that ends in ``NoAnswer`` once the loop's clock passes ``when``
    (``asyncio`` time), however its chunks trickle in."""

    def __init__(
        self, inner: httpx.AsyncByteStream, when: float, *, service: str, where: str, seconds: float
    ) -> None:
        self.inner, self.when = inner, when
        self.service, self.where, self.seconds = service, where, seconds

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self.inner)
        while True:
            timer = asyncio.timeout_at(self.when)
            try:
                async with timer:
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if timer.expired():
                    raise _late(self.service, self.where, self.seconds) from None
                raise
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


def _late(service: str, where: str, seconds: float) -> NoAnswer:
    return timed_out(
        service, where=where, reason=f"no complete answer within the {seconds:g} s deadline"
    )


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
    result_chain: bool = False,
    max_bytes: int = MAX_BODY_BYTES,
    deadline: float | None = None,
    where: str = "",
    **kwargs: Any,
) -> httpx.Response:
    """``http.request(method, url, **kwargs)`` with the guards above. With ``stream`` the body
    is left unread (read it with ``read_capped``; close the response); the deadline still runs
    while it is read. ``public``: the request carries no credential, so redirects may lead to
    any host. ``result_chain``: same-origin 303s are followed until the deadline (see
    above). ``deadline``: seconds for the whole request (default: ``deadline_for`` the
    request's or the client's timeout); ``where`` names the request in its ``NoAnswer``.
    ``httpx`` errors pass through for the caller to translate (``errors.transport_errors``); a
    refused redirect, an oversized body or a passed deadline raises ours."""
    if deadline is None:
        deadline = deadline_for(kwargs.get("timeout", http.timeout))
    when = asyncio.get_running_loop().time() + deadline
    timer = asyncio.timeout_at(when)
    try:
        async with timer:
            return await _send(
                http,
                method,
                url,
                service=service,
                stream=stream,
                public=public,
                result_chain=result_chain,
                max_bytes=max_bytes,
                deadline=(when, where, deadline),
                **kwargs,
            )
    except TimeoutError:
        if timer.expired():
            raise _late(service, where, deadline) from None
        raise


async def _send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    stream: bool,
    public: bool,
    result_chain: bool,
    max_bytes: int,
    deadline: tuple[float, str, float],
    **kwargs: Any,
) -> httpx.Response:
    when, where, seconds = deadline
    request = http.build_request(method, url, **kwargs)
    start = request.url
    redirects = hops = 0
    while True:
        response = await http.send(request, follow_redirects=False, stream=True)
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _Deadlined(
                response.stream, when, service=service, where=where, seconds=seconds
            )
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
        if (
            result_chain
            and response.status_code == 303
            and _origin(start) == _origin(following.url)
        ):
            hops += 1
            if hops > MAX_RESULT_HOPS:
                raise Rejected(
                    f"{method}: more than {MAX_RESULT_HOPS} result redirects", service=service
                )
        else:
            redirects += 1
            if redirects > MAX_REDIRECTS:
                raise Rejected(f"{method}: more than {MAX_REDIRECTS} redirects", service=service)
        request = following


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
