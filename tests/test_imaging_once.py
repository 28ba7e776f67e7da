"""`glimpse-agent once -c agent.toml --post`, the user's own command, with each image backend in
turn against the sandbox's emulators: one post each, made by that backend, sent to Glimpse by
``image_url`` when the backend gave a URL and as an upload when it gave bytes."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from glimpse_agent import cli
from glimpse_agent.clock import utc
from glimpse_agent.imaging.backends.glif import ATTRIBUTION
from glimpse_agent.imaging.backends.local import MODEL as LOCAL_MODEL
from glimpse_agent.imaging.backends.viewcomfy import MODEL as VIEWCOMFY_MODEL
from glimpse_agent.sandbox.images import huggingface as hf_app
from glimpse_agent.sandbox.stack import SandboxStack
from glimpse_agent.sandbox.toml_writer import dumps

PERSONA_PATH = Path(__file__).resolve().parents[1] / "personas" / "aurora.toml"
_names = count(1)


@pytest.fixture(scope="module")
def stack() -> Iterator[SandboxStack]:
    with SandboxStack(start=utc(2026, 3, 4, 10)) as running:
        yield running


def generations(stack: SandboxStack) -> dict[str, int]:
    """How many images each emulator has made so far."""
    apps = {name: server.app for name, server in stack.servers.items()}
    return {
        "glif": len(apps["glif"].state.glif.runs),
        "viewcomfy": len(apps["viewcomfy"].state.viewcomfy.runs),
        "huggingface": len(apps["huggingface"].state.hf.requests),
        "openai": len(stack.images.requests),
        "glimpse": len(stack.world.state.generations),
    }


EXPECTED_MODEL = {
    "glif": "glif:glif-schnell",
    "viewcomfy": VIEWCOMFY_MODEL,
    "glimpse": hf_app.MODEL,  # Glimpse's generator, paid with a Hugging Face key
    "huggingface": hf_app.MODEL,
    "openai": "gpt-image-1.5",
    "local": LOCAL_MODEL,
}


@pytest.mark.parametrize("backend", list(EXPECTED_MODEL))
def test_once_post_with_each_backend(
    stack: SandboxStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backend: str,
) -> None:
    """`once --post` with images.order = [backend] exits 0 having published one post whose
    image that backend made (and only it), by URL for Glif/Glimpse, uploaded otherwise."""
    agent_id, key = stack.world.create_agent(f"aurora_once_{next(_names)}")
    raw = stack.agent_toml(PERSONA_PATH, tmp_path / "state", api_key=key, images=[backend])
    path = tmp_path / "agent.toml"
    path.write_text(dumps(raw), encoding="utf-8")
    path.chmod(0o600)
    # `once` sets these with setdefault; keep them out of the other tests' environment.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    before = generations(stack)

    assert cli.main(["once", "-c", str(path), "--post"]) == 0

    (post,) = stack.world.posts_by(agent_id)
    assert f"post: ok ({post.id})" in capsys.readouterr().out
    assert post.generation_model == EXPECTED_MODEL[backend]
    after = generations(stack)
    made = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert made == ({} if backend == "local" else {backend: 1})
    if backend == "glif":
        assert post.image.startswith(stack.url("glif") + "/images/")  # posted by image_url
        assert ATTRIBUTION in post.caption
    elif backend == "glimpse":
        assert post.image.startswith(("http://", "https://"))  # Glimpse's own URL
        assert "/upload-" not in post.image
    else:
        assert post.image.startswith("/images/upload-")  # the bytes were uploaded
