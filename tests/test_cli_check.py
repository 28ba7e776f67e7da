"""`glimpse-agent check`: one line per configured service against the emulators on loopback,
exit 0 only when all pass, the failing one named, never a secret printed, nothing written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glimpse_agent.cli import main
from glimpse_agent.ledger.storage import StateLock
from glimpse_agent.sandbox.glimpse.testing import GlimpseHost, GlimpseSandbox
from glimpse_agent.sandbox.images import glif as glif_app
from glimpse_agent.sandbox.images import huggingface as hf_app
from glimpse_agent.sandbox.images import openai as openai_images
from glimpse_agent.sandbox.images import viewcomfy as viewcomfy_app
from glimpse_agent.sandbox.langflow.app import LangflowState, create_langflow_app
from glimpse_agent.sandbox.openai_chat import ChatState, create_openai_chat_app
from glimpse_agent.sandbox.server import LoopbackServer, LoopbackServers
from glimpse_agent.sandbox.toml_writer import write_agent_toml

GLIMPSE_KEY_NAME = "aurora"
LANGFLOW_KEY = "lf-check-key-000001"
CHAT_KEY = "sk-check-chat-000001"
PROVIDER_KEY = "hf_providerkey000001"
PERSONA = """\
name = "aurora"
timezone = "Europe/Paris"
active_hours = ["08:00", "22:00"]
posts_per_day = 2
topics = ["lighthouses"]
hashtags = ["#aiart"]
"""


class Services:
    """Every emulator `check` meets, each on its own loopback port, for the whole module."""

    def __init__(self) -> None:
        self.langflow = LangflowState(api_key=LANGFLOW_KEY)
        self.langflow.add_flow(endpoint_name="caption")
        self.chat = ChatState(api_key=CHAT_KEY)
        apps = {
            "glif": glif_app.create_glif_app(),
            "viewcomfy": viewcomfy_app.create_viewcomfy_app(),
            "huggingface": hf_app.create_hf_app(),
            "openai": openai_images.create_openai_images_app(),
            "langflow": create_langflow_app(self.langflow),
            "chat": create_openai_chat_app(self.chat),
        }
        self.servers = LoopbackServers(apps)
        self.host = GlimpseHost()

    def url(self, name: str) -> str:
        return self.servers.url(name)

    def config(self, glimpse: GlimpseSandbox, glimpse_key: str | None) -> dict[str, Any]:
        """agent.toml (as a dict) using every service, with the right keys."""
        glif = self.url("glif")
        glimpse_section: dict[str, Any] = {"base_url": glimpse.base_url, "timeout": 5}
        if glimpse_key is not None:
            glimpse_section["api_key"] = glimpse_key
        return {
            "persona": "persona.toml",
            "state_dir": "state",
            "glimpse": glimpse_section,
            "images": {
                "order": ["glif", "viewcomfy", "glimpse", "huggingface", "openai", "local"],
                "glif": {
                    "token": glif_app.TOKEN,
                    "glif_id": "glif-schnell",
                    "base_url": glif,
                    "api_url": f"{glif}/api",
                    "timeout": 5,
                },
                "viewcomfy": {
                    "url": self.url("viewcomfy"),
                    "api_url": self.url("viewcomfy"),
                    "client_id": viewcomfy_app.CLIENT_ID,
                    "client_secret": viewcomfy_app.CLIENT_SECRET,
                    "timeout": 5,
                },
                "glimpse": {"provider": "huggingface", "api_key": PROVIDER_KEY},
                "huggingface": {
                    "token": hf_app.TOKEN,
                    "base_url": f"{self.url('huggingface')}/models/{hf_app.MODEL}",
                    "timeout": 5,
                },
                "openai": {
                    "api_key": openai_images.API_KEY,
                    "base_url": f"{self.url('openai')}/v1",
                    "timeout": 5,
                },
            },
            "captions": {
                "order": ["langflow", "llm", "glimpse", "template"],
                "langflow": {
                    "base_url": self.url("langflow"),
                    "flow": "caption",
                    "api_key": LANGFLOW_KEY,
                    "timeout": 5,
                },
            },
            "llm": {
                "base_url": f"{self.url('chat')}/v1",
                "api_key": CHAT_KEY,
                "model": "gpt-5-mini",
                "timeout": 5,
            },
        }


def secrets_of(raw: dict[str, Any]) -> list[str]:
    """Every secret value written in a config dict."""
    found: list[str] = []
    for key, value in raw.items():
        if isinstance(value, dict):
            found += secrets_of(value)
        elif key in {"api_key", "token", "client_id", "client_secret"} and value:
            found.append(str(value))
    return found


def write_config(tmp_path: Path, raw: dict[str, Any]) -> Path:
    (tmp_path / "persona.toml").write_text(PERSONA, encoding="utf-8")
    return write_agent_toml(tmp_path / "agent.toml", raw)


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--log-format", "json", "check", "-c", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def line_of(out: str, item: str) -> str:
    found = [ln for ln in out.splitlines() if ln.split()[1:2] == [item]]
    assert len(found) == 1, f"no single line for {item}:\n{out}"
    return found[0]


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    svc = Services()
    with svc.servers, svc.host:
        try:
            yield svc
        finally:  # end any slow answer before the servers stop
            svc.langflow.release()
            svc.chat.release()


@pytest.fixture
def glimpse(services: Services) -> Iterator[GlimpseSandbox]:
    with services.host.serve(population=0) as sandbox:
        yield sandbox


@pytest.fixture
def verified_key(glimpse: GlimpseSandbox) -> str:
    return glimpse.agent(GLIMPSE_KEY_NAME)[1]


def test_everything_reachable_exits_0_with_one_ok_line_each(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Glimpse, five image backends, Langflow, Glimpse captions, templates and the LLM: all ok."""
    raw = services.config(glimpse, verified_key)
    path = write_config(tmp_path, raw)
    code, out, err = run_check(path, capsys)
    assert code == 0, out + err
    assert line_of(out, "glimpse").split() == ["ok", "glimpse", "aurora", "(verified)"]
    items = [ln.split()[1] for ln in out.splitlines() if ln.startswith(("ok", "FAILED"))]
    assert items == [
        "config",
        "glimpse",
        "images.glif",
        "images.viewcomfy",
        "images.glimpse",
        "images.huggingface",
        "images.openai",
        "images.local",
        "captions.langflow",
        "llm",
        "captions.glimpse",
        "captions.template",
    ]
    assert all(ln.startswith("ok") for ln in out.splitlines()[:-1]), out
    assert out.splitlines()[-1] == "all 12 checks passed"
    for secret in [*secrets_of(raw), verified_key]:
        assert secret not in out + err


def test_check_writes_nothing_and_runs_beside_a_locked_state_dir(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the daemon's lock held, check still passes; no ledger, no Glimpse write, no run."""
    path = write_config(tmp_path, services.config(glimpse, verified_key))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    runs_before = len(services.langflow.runs)
    calls_before = len(services.chat.calls)
    with StateLock(state):
        code, out, err = run_check(path, capsys)
    assert code == 0, out + err
    assert sorted(p.name for p in state.iterdir()) == ["lock"]
    routes = glimpse.world.stats.requests_by_route
    assert routes and all(route.startswith("GET ") for route in routes), routes
    assert glimpse.world.image_settings(glimpse.world.agent_id_by_name("aurora") or "") is None
    # Langflow saw one refused probe (no flow run), the chat model no completion at all.
    probes = services.langflow.runs[runs_before:]
    assert [(r.status, r.text) for r in probes] == [(400, None)]
    assert len(services.chat.calls) == calls_before


def test_a_stopped_emulator_fails_check_and_is_named(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ViewComfy down: exit 1, its line says why, every other line stays ok."""
    stopped = LoopbackServer(viewcomfy_app.create_viewcomfy_app()).start()
    stopped.stop()
    raw = services.config(glimpse, verified_key)
    raw["images"]["viewcomfy"]["url"] = stopped.url
    code, out, err = run_check(write_config(tmp_path, raw), capsys)
    assert code == 1
    line = line_of(out, "images.viewcomfy")
    assert line.startswith("FAILED") and "unavailable" in line, line
    failed = [ln.split()[1] for ln in out.splitlines() if ln.startswith("FAILED")]
    assert failed == ["images.viewcomfy"]
    assert out.splitlines()[-1].endswith("checks failed: images.viewcomfy")
    for secret in [*secrets_of(raw), verified_key]:
        assert secret not in out + err


@pytest.mark.parametrize(
    ("section", "field", "item"),
    [
        (("images", "glif"), "token", "images.glif"),
        (("images", "viewcomfy"), "client_secret", "images.viewcomfy"),
        (("images", "openai"), "api_key", "images.openai"),
        (("captions", "langflow"), "api_key", "captions.langflow"),
        (("llm",), "api_key", "llm"),
    ],
)
def test_a_wrong_key_fails_only_its_backend_and_is_never_printed(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    section: tuple[str, ...],
    field: str,
    item: str,
) -> None:
    """A refused key: exit 1, the backend's line says the key was refused, no secret shown."""
    raw = services.config(glimpse, verified_key)
    table = raw
    for part in section:
        table = table[part]
    table[field] = "sk-wrongkey-" + field.replace("_", "") + "-9f8e7d"
    code, out, err = run_check(write_config(tmp_path, raw), capsys)
    assert code == 1
    line = line_of(out, item)
    assert line.startswith("FAILED") and "key refused" in line, line
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("FAILED")] == [item]
    for secret in [*secrets_of(raw), verified_key]:
        assert secret not in out + err, secret


def test_an_unverified_key_is_reported_with_the_way_out(
    services: Services, glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent exists but is not verified: glimpse FAILED, naming it and the verify command."""
    _, key = glimpse.agent(GLIMPSE_KEY_NAME, verified=False)
    code, out, _ = run_check(write_config(tmp_path, services.config(glimpse, key)), capsys)
    assert code == 1
    line = line_of(out, "glimpse")
    assert line.startswith("FAILED") and "aurora is not verified" in line, line
    assert "glimpse-agent verify --code" in line
    assert key not in out


def test_an_unknown_glimpse_key_is_refused_with_where_it_came_from(
    services: Services, glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key Glimpse does not know: glimpse FAILED 'key refused', naming the config key."""
    key = "glm_notarealkey0000000000"
    code, out, err = run_check(write_config(tmp_path, services.config(glimpse, key)), capsys)
    assert code == 1
    line = line_of(out, "glimpse")
    assert "key refused" in line and "glimpse.api_key" in line, line
    assert key not in out + err


def test_the_key_register_stored_is_used_and_its_absence_explained(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No api_key: the state dir's key file is used; without the file, check says to register."""
    raw = services.config(glimpse, None)
    path = write_config(tmp_path, raw)
    code, out, _ = run_check(path, capsys)
    assert code == 1
    assert "no key" in line_of(out, "glimpse") and "glimpse-agent register" in out
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "glimpse_api_key").write_text(verified_key + "\n", encoding="utf-8")
    code, out, err = run_check(path, capsys)
    assert code == 0, out + err
    assert verified_key not in out + err


def test_a_missing_flow_and_an_unknown_model_are_configuration_failures(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A flow Langflow does not have (404) and a model the LLM server does not list: refused."""
    raw = services.config(glimpse, verified_key)
    raw["captions"]["langflow"]["flow"] = "no-such-flow"
    raw["llm"]["model"] = "gpt-nonexistent"
    code, out, _ = run_check(write_config(tmp_path, raw), capsys)
    assert code == 1
    assert "captions.langflow.flow" in line_of(out, "captions.langflow")
    llm = line_of(out, "llm")
    assert "'gpt-nonexistent' is not among" in llm and "llm.model" in llm


def test_a_hung_service_cannot_hang_check(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Langflow and the LLM never answer: each fails after the per-check timeout."""
    monkeypatch.setattr("glimpse_agent.commands.check.SECONDS_EACH", 0.5)
    slow_flow = LangflowState(api_key=LANGFLOW_KEY)
    slow_flow.add_flow(endpoint_name="caption")
    slow_flow.delay = 30
    slow_chat = ChatState(api_key=CHAT_KEY, delay=30)
    servers = [
        LoopbackServer(create_langflow_app(slow_flow)).start(),
        LoopbackServer(create_openai_chat_app(slow_chat)).start(),
    ]
    try:
        raw = services.config(glimpse, verified_key)
        raw["captions"]["langflow"]["base_url"] = servers[0].url
        raw["llm"]["base_url"] = f"{servers[1].url}/v1"
        started = time.monotonic()
        code, out, _ = run_check(write_config(tmp_path, raw), capsys)
        elapsed = time.monotonic() - started
    finally:
        slow_flow.release()
        slow_chat.release()
        for server in servers:
            server.stop()
    assert code == 1
    assert elapsed < 5, elapsed
    for item in ("captions.langflow", "llm"):
        line = line_of(out, item)
        assert line.startswith("FAILED") and "no answer within 0.5 s" in line, line


def test_a_bad_config_still_exits_2_before_reaching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown key in agent.toml: exit 2, the problem on stderr, no check line printed."""
    path = write_config(tmp_path, {"persona": "persona.toml", "nonsense": 1})
    code, out, err = run_check(path, capsys)
    assert code == 2
    assert "nonsense" in err and out == ""


def test_an_llm_server_without_a_model_list_gets_a_one_token_chat(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GET /v1/models is 404 (some local servers): one tiny completion proves key and model."""
    from starlette.applications import Starlette

    from glimpse_agent.sandbox.openai_chat import chat_routes

    state = ChatState(api_key=CHAT_KEY)
    routes = [r for r in chat_routes(state) if getattr(r, "path", "") != "/v1/models"]
    with LoopbackServer(Starlette(routes=routes)) as server:
        raw = services.config(glimpse, verified_key)
        raw["llm"]["base_url"] = f"{server.url}/v1"
        raw["llm"]["model"] = "local-model"
        code, out, err = run_check(write_config(tmp_path, raw), capsys)
    assert code == 0, out + err
    assert [call.model for call in state.calls] == ["local-model"]


def test_a_retired_model_is_a_warning_that_does_not_fail(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Glimpse's "openai" provider is documented as DALL-E 3, retired in May 2026: its line
    reads "warn" and says so, the others stay ok, and check still exits 0."""
    raw = services.config(glimpse, verified_key)
    raw["images"]["glimpse"]["provider"] = "openai"
    code, out, err = run_check(write_config(tmp_path, raw), capsys)
    assert code == 0, out + err
    line = line_of(out, "images.glimpse")
    assert line.startswith("warn") and "dall-e-3" in line and "retired in May 2026" in line
    others = [ln for ln in out.splitlines()[:-1] if "images.glimpse" not in ln]
    assert all(ln.startswith("ok") for ln in others), out
    assert out.splitlines()[-1] == "all 12 checks passed (1 with warnings: images.glimpse)"


def test_viewcomfy_line_says_how_the_credentials_were_proved(
    services: Services,
    glimpse: GlimpseSandbox,
    verified_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A passing ViewComfy line names the host its credentials were verified with."""
    raw = services.config(glimpse, verified_key)
    code, out, _ = run_check(write_config(tmp_path, raw), capsys)
    assert code == 0
    line = line_of(out, "images.viewcomfy")
    assert line.startswith("ok") and "credentials verified with 127.0.0.1" in line, line
