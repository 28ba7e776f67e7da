"""What a fresh interpreter imports: the CLI's help and a daemon without SDK backends stay light;
openai and huggingface_hub load only when their backend makes its first image.

Each case runs in a subprocess (a fresh ``sys.modules``) against emulators served from this
process on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox, glimpse_sandbox
from glimpse_agent.sandbox.images import huggingface as hf_app
from glimpse_agent.sandbox.images import openai as openai_images
from glimpse_agent.sandbox.toml_writer import write_agent_toml

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("openai", "huggingface_hub", "httpx2")
# Never needed by --help; the emulators' web stack is never needed by a real daemon.
HEAVY_FOR_HELP = (*SDKS, "apscheduler", "tinydb", "PIL", "starlette", "uvicorn")
EMULATOR_STACK = ("starlette", "uvicorn")

# Builds the whole agent with open_runtime, as `glimpse-agent run` does, then reports the
# top-level modules loaded at each stage into the JSON file named by argv[2].
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from glimpse_agent.clock import SystemClock
    from glimpse_agent.config import load_agent
    from glimpse_agent.imaging import ImageRequest
    from glimpse_agent.logs import configure_logging
    from glimpse_agent.run.assemble import open_runtime

    def top_level():
        return sorted({name.partition(".")[0] for name in sys.modules})

    async def main(config, out, generate, post):
        configure_logging("warning", json=True)
        clock = SystemClock()
        loaded = load_agent(config)
        report = {}
        async with await open_runtime(loaded, clock=clock) as runtime:
            agent = runtime.agent
            await agent.startup()
            await agent.plan_day(clock.now())
            report["opened"] = top_level()
            report["backends"] = [b.name for b in agent.router.backends]
            report["generated"] = []
            request = ImageRequest(prompt="a paper boat", persona=loaded.persona.name)
            for backend in agent.router.backends:
                if backend.name in generate:
                    image = await backend.generate(request)
                    report["generated"].append(image.backend)
            if post:
                outcome = await agent.post()
                report["post"] = [outcome.ok, outcome.detail]
            report["used"] = top_level()
        with open(out, "w", encoding="utf-8") as f:
            json.dump(report, f)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4] == "post"))
    """
)


@pytest.fixture(scope="module")
def glimpse() -> Iterator[GlimpseSandbox]:
    with glimpse_sandbox(population=4) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def sdk_urls(oa_server: tuple[Any, str], hf_server: tuple[Any, str]) -> dict[str, str]:
    return {"openai": f"{oa_server[1]}/v1", "huggingface": f"{hf_server[1]}/models/{hf_app.MODEL}"}


OFFLINE_SECTIONS: dict[str, dict[str, Any]] = {
    # [images.<key>] sections, configured but never called: building them pulls in no SDK.
    "glif": {
        "token": "glif-token",
        "glif_id": "g",
        "base_url": "http://127.0.0.1:9",
        "api_url": "http://127.0.0.1:9/api",
    },
    "viewcomfy": {"url": "http://127.0.0.1:9", "client_id": "a", "client_secret": "b"},
    "glimpse": {"provider": "huggingface", "api_key": "hf_byok_token"},
}


def sdk_sections(urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """[images.openai] and [images.huggingface] pointed at the emulators."""
    return {
        "openai": {
            "api_key": openai_images.API_KEY,
            "base_url": urls["openai"],
            "quality": "low",
            "timeout": 10,
        },
        "huggingface": {
            "token": hf_app.TOKEN,
            "base_url": urls["huggingface"],
            "width": 256,
            "height": 256,
            "timeout": 10,
        },
    }


def agent_config(
    tmp_path: Path,
    glimpse: GlimpseSandbox,
    order: list[str],
    sections: dict[str, dict[str, Any]] | None = None,
    llm: dict[str, Any] | None = None,
) -> Path:
    """An agent.toml for a new agent of ``glimpse``: images ``order`` (plus ``sections``),
    template captions only, and ``llm`` as its [llm] (none by default)."""
    persona = shutil.copy(ROOT / "personas" / "aurora.toml", tmp_path / "aurora.toml")
    _, key = glimpse.world.create_agent(f"lazy{uuid.uuid4().hex[:10]}")
    raw: dict[str, Any] = {
        "persona": str(persona),
        "state_dir": str(tmp_path / "state"),
        "glimpse": {"base_url": glimpse.base_url, "api_key": key, "timeout": 10},
        "images": {"order": order, "local": {"width": 64, "height": 64}, **(sections or {})},
        "captions": {"order": ["template"]},
    }
    if llm is not None:
        raw["llm"] = llm
    return write_agent_toml(tmp_path / "agent.toml", raw)


def run_child(tmp_path: Path, config: Path, *, generate: list[str], post: bool) -> dict[str, Any]:
    out = tmp_path / "modules.json"
    args = [str(config), str(out), ",".join(generate), "post" if post else "-"]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env=_child_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def _child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PROXY", "_proxy"))}
    env.update(
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(tmp_path / "hf-home"),
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


@pytest.mark.parametrize(
    ("order", "post"), [(["local"], True), (["glif", "viewcomfy", "glimpse", "local"], False)]
)
def test_daemon_without_sdk_backends_never_imports_them(
    tmp_path: Path, glimpse: GlimpseSandbox, order: list[str], post: bool
) -> None:
    """open_runtime + startup + plan (+ one post: local image, template caption) leaves openai,
    huggingface_hub, httpx2, APScheduler and the emulators' web stack unimported."""
    config = agent_config(tmp_path, glimpse, order, OFFLINE_SECTIONS)
    report = run_child(tmp_path, config, generate=[], post=post)
    assert report["backends"] == order
    if post:
        assert report["post"][0] is True, report["post"]
    assert loaded(report["opened"], SDKS + EMULATOR_STACK) == []
    assert loaded(report["used"], (*SDKS, *EMULATOR_STACK, "apscheduler")) == []


def test_sdks_load_only_when_their_backend_first_runs(
    tmp_path: Path, glimpse: GlimpseSandbox, sdk_urls: dict[str, str]
) -> None:
    """With [images.openai] and [images.huggingface] configured, opening the runtime imports
    neither SDK; one image through each imports openai, huggingface_hub and httpx2."""
    config = agent_config(
        tmp_path, glimpse, ["openai", "huggingface", "local"], sdk_sections(sdk_urls)
    )
    report = run_child(tmp_path, config, generate=["openai", "huggingface"], post=False)
    assert report["generated"] == ["openai", "huggingface"]
    assert loaded(report["opened"], SDKS) == []
    assert loaded(report["used"], SDKS) == list(SDKS)


def test_a_configured_llm_makes_no_sdk_client_until_first_asked(
    tmp_path: Path, glimpse: GlimpseSandbox
) -> None:
    """An [llm] section alone (a fleet of hundreds has one per persona) imports no openai and
    makes no client when the runtime opens, starts and plans."""
    llm = {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-lazy-0001", "model": "m"}
    config = agent_config(tmp_path, glimpse, ["local"], llm=llm)
    report = run_child(tmp_path, config, generate=[], post=False)
    assert loaded(report["used"], SDKS) == []


HELP_CHILD = textwrap.dedent(
    """
    import json, sys
    from glimpse_agent.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules})), file=sys.stderr)
    """
)


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["--version"]])
def test_cli_help_stays_light(argv: list[str]) -> None:
    """`glimpse-agent --help` (and `run --help`, `--version`) imports no SDK, scheduler,
    TinyDB, Pillow or web stack."""
    proc = subprocess.run(
        [sys.executable, "-c", HELP_CHILD, *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "glimpse-agent" in proc.stdout
    modules = json.loads(proc.stderr.strip().splitlines()[-1])
    assert "glimpse_agent" in modules
    assert loaded(modules, HEAVY_FOR_HELP) == []


def test_console_script_help_runs_in_a_fresh_process() -> None:
    """The installed `glimpse-agent --help` entry point exits 0 and lists every command."""
    script = Path(sys.executable).with_name("glimpse-agent")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("sandbox", "run", "once", "plan", "status", "check", "register"):
        assert command in proc.stdout
