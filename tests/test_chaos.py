"""The soaks' random-fault middleware (sandbox/chaos.py) over real HTTP: each kind of fault
does what it says, to the client and to the app behind it (done or not done)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from glimpse_agent.sandbox.chaos import Chaos
from glimpse_agent.sandbox.server import LoopbackServer
from polling import wait_until


class Counter:
    def __init__(self) -> None:
        self.done = 0

    def app(self) -> Starlette:
        async def work(_: Request) -> JSONResponse:
            self.done += 1
            return JSONResponse({"done": self.done, "padding": "x" * 4000})

        return Starlette(routes=[Route("/work", work, methods=["POST"])])


@contextmanager
def serve(kind: str, **options: Any) -> Iterator[tuple[str, Counter, Chaos]]:
    """An app behind a Chaos that fails every request with ``kind``."""
    counter = Counter()
    chaos = Chaos(counter.app(), probability=1.0, seed=1, kinds=(kind,), **options)
    with LoopbackServer(chaos) as server:
        try:
            yield server.url + "/work", counter, chaos
        finally:
            chaos.release()


def test_status_answers_5xx_without_doing_the_work() -> None:
    with serve("status") as (url, counter, chaos):
        answer = httpx.post(url)
    assert answer.status_code in (500, 502, 503, 504) and answer.json()["error"]
    assert counter.done == 0 and chaos.figures()["faults_served"] == {"status": 1}


def test_throttle_counts_a_request_inside_its_retry_after() -> None:
    with serve("throttle", retry_after=(3600.0,)) as (url, counter, chaos):
        first = httpx.post(url)
        assert first.status_code == 429 and first.headers["retry-after"] == "3600"
        assert chaos.figures()["retry_after_violations"] == 0
        httpx.post(url)  # too early
        assert chaos.figures()["retry_after_violations"] == 1 and counter.done == 0


def test_garbage_is_a_200_html_page() -> None:
    with serve("garbage") as (url, counter, _):
        answer = httpx.post(url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "text/html"
        assert answer.text.startswith("<html>") and counter.done == 0


@pytest.mark.parametrize("kind", ["cut", "drop"])
def test_cut_and_drop_do_the_work_and_lose_the_answer(kind: str) -> None:
    with serve(kind) as (url, counter, _):
        with pytest.raises(httpx.TransportError):
            httpx.post(url, timeout=5)
        assert counter.done == 1


def test_slow_apply_does_the_work_after_the_client_gave_up() -> None:
    with serve("slow_apply", slow_seconds=0.5) as (url, counter, _):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, timeout=0.1)
        assert counter.done == 0
        assert wait_until(lambda: counter.done == 1, timeout=5)


def test_endless_never_finishes_its_body() -> None:
    with serve("endless", endless_every=0.05) as (url, counter, _):
        # Chunks keep coming, so only a whole-request deadline ends it; per-chunk reads do not.
        with httpx.stream("POST", url, timeout=1) as answer:
            assert answer.status_code == 200
            got = 0
            for chunk in answer.iter_bytes():
                got += len(chunk)
                if got > 12:  # the opening and three spaces, well after the headers
                    break
        assert got > 12 and counter.done == 0


def test_no_fault_passes_through_and_zero_probability_stops_faults() -> None:
    counter = Counter()
    chaos = Chaos(counter.app(), probability=0.0, seed=1)
    with LoopbackServer(chaos) as server:
        assert httpx.post(server.url + "/work").json()["done"] == 1
    assert chaos.figures() == {"requests": 1, "faults_served": {}, "retry_after_violations": 0}
    with pytest.raises(ValueError, match="unknown fault kinds"):
        Chaos(counter.app(), probability=0.5, kinds=("sunspots",))
