"""The demo personas ship inside the package: `glimpse-agent sandbox` finds them after a plain
(not editable) `pip install`, from any folder, and the repository's ``personas/`` is only a
link to them, so there is one copy to edit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from glimpse_agent.commands.sandbox import default_personas

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PERSONAS = ROOT / "src" / "glimpse_agent" / "personas"


def test_the_repository_personas_folder_is_the_package_data() -> None:
    """One source: ``personas/`` resolves to the packaged folder, and the sandbox's default is
    every persona there."""
    assert (ROOT / "personas").resolve() == PACKAGE_PERSONAS.resolve()
    shipped = sorted(PACKAGE_PERSONAS.glob("*.toml"))
    assert len(shipped) >= 3
    assert [p.resolve() for p in default_personas()] == [p.resolve() for p in shipped]


def test_the_default_does_not_depend_on_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder with its own ``personas/`` does not change what the sandbox runs by default
    (your own personas go in with ``--persona``)."""
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "stray.toml").write_text("name = 'stray'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert [p.name for p in default_personas()] == sorted(
        p.name for p in PACKAGE_PERSONAS.glob("*.toml")
    )


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sandbox_runs_from_an_empty_folder_after_a_plain_pip_install(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources (no ``personas/`` beside it), install it with
    ``--no-deps`` into a throw-away venv whose dependencies come from this venv, and run
    ``sandbox --days 1`` in an empty folder: the packaged personas run, from the wheel."""
    if _pip("--version").returncode != 0:
        pytest.skip("pip is not available to this interpreter")
    source = tmp_path / "source"
    (source / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src" / "glimpse_agent",
        source / "src" / "glimpse_agent",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    built = _pip("wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source))
    if built.returncode != 0 and "No matching distribution" in built.stderr:
        pytest.skip("no package index holds the build backend (setuptools) here")
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("glimpse_agent-*.whl"))

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = _pip(
        "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    # Dependencies from this venv, after the new venv's own site-packages (a plain path entry:
    # the editable install's .pth hook in there is not run, so it cannot shadow the wheel).
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    where = subprocess.run(
        [str(python), "-c", "import glimpse_agent; print(glimpse_agent.__file__)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where  # the wheel, not the source tree
    ran = subprocess.run(
        [str(env_dir / "bin" / "glimpse-agent"), "sandbox", "--days", "1"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "no persona files found" not in ran.stderr
    shipped = sorted(p.stem for p in PACKAGE_PERSONAS.glob("*.toml"))
    assert sorted(p.name for p in (empty / "sandbox-state").iterdir() if p.is_dir()) == shipped
    assert (empty / "sandbox-state" / "report.html").is_file()
    for name in shipped:
        assert f"{name}:" in ran.stdout
