"""The image and the Compose file as an operator meets them: hadolint finds nothing in the
Dockerfile; the final stage holds only the installed venv and runs as a numeric user with the
health check on `glimpse-agent health`; the build context holds only what the build reads; each
Compose persona has its own config, state volume and secrets. (Building and running the image
needs a Docker engine: tests/docker/smoke.sh, outside the suite.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_facts import COMPOSE, CREDENTIALS, DOCKERFILE, FLEET_COMPOSE, REPO

STATE = "/var/lib/glimpse-agent"
CONFIG = "/etc/glimpse-agent/agent.toml"


def hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in joined.splitlines()]
    out: list[list[str]] = []
    for ln in lines:
        if not ln or ln.startswith("#"):
            continue
        if ln.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(ln)
    return out


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    exe = hadolint()
    if exe is None:
        pytest.skip(
            "hadolint is not installed (it comes with the dev extras: pip install -e '.[dev]')"
        )
    proc = subprocess.run(
        [exe, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_the_final_stage_holds_only_the_venv_and_runs_as_a_numeric_user() -> None:
    build, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert build[0].split()[1:] == [final[0].split()[1], "AS", "build"]
    # Sources and the constraints file are copied into the build stage only ...
    assert any(ln.startswith("COPY src ") for ln in build)
    assert any("--constraint constraints.txt" in ln or "-c constraints.txt" in ln for ln in build)
    # ... and the final stage takes nothing from the context, only the build stage's venv.
    copies = [ln for ln in final if ln.startswith(("COPY", "ADD"))]
    assert copies == ["COPY --from=build /opt/glimpse-agent /opt/glimpse-agent"]
    users = [ln.split()[1] for ln in final if ln.startswith("USER ")]
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), users
    assert f'VOLUME ["{STATE}"]' in final
    env = " ".join(ln for ln in final if ln.startswith("ENV "))
    assert f"STATE_DIRECTORY={STATE}" in env and "CREDENTIALS_DIRECTORY=/run/secrets" in env


def test_the_health_check_and_the_daemon_read_the_same_config() -> None:
    final = stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    health = [ln for ln in final if ln.startswith("HEALTHCHECK ")]
    assert len(health) == 1
    assert health[0].endswith(f'CMD ["glimpse-agent", "health", "-c", "{CONFIG}"]'), health
    assert 'ENTRYPOINT ["glimpse-agent"]' in final
    assert f'CMD ["run", "-c", "{CONFIG}"]' in final


def test_the_build_context_holds_exactly_what_the_build_copies() -> None:
    """.dockerignore ignores everything but the files the build stage COPYs (no .venv, .git,
    state, secrets or configs in a context sent to the engine)."""
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied: set[str] = set()
    for stage in stages(DOCKERFILE.read_text(encoding="utf-8")):
        for ln in stage:
            if ln.startswith("COPY ") and "--from=" not in ln:
                copied.update(p.rstrip("/") for p in ln.split()[1:-1])
    assert allowed == copied
    assert all((REPO / p).exists() for p in copied)


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_personas_side_by_side_each_with_its_own_state_and_secrets() -> None:
    data = compose()
    services: dict[str, Any] = data["services"]
    assert len(services) >= 2
    configs, volumes, sources = set(), set(), set()
    for name, svc in services.items():
        mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
        assert mounts[CONFIG].endswith(f"{name}.toml"), name
        configs.add(mounts[CONFIG])
        volumes.add(mounts[STATE])
        assert mounts[STATE] in data["volumes"], "a named volume, not a bind mount of ./state"
        targets = {s["target"] for s in svc["secrets"]}
        assert "glimpse" in targets and targets <= set(CREDENTIALS.values()), name
        sources.update(s["source"] for s in svc["secrets"])
        assert "healthcheck" not in svc, "the image's HEALTHCHECK is the one health check"
    assert len(configs) == len(volumes) == len(services)
    assert sources <= set(data["secrets"]) and len(sources) == sum(
        len(s["secrets"]) for s in services.values()
    )


def test_compose_restart_policy_gives_up_instead_of_looping() -> None:
    """Docker restarts on any non-zero exit; a bounded on-failure stops a bad config (2), an
    unusable state dir (3) or a refused key (5) after a few tries, where unless-stopped and
    always would loop for ever (the reasons are in docs/deploy.md)."""
    for name, svc in compose()["services"].items():
        restart = svc["restart"]
        found = re.fullmatch(r"on-failure:(\d+)", restart)
        assert found and 1 <= int(found.group(1)) <= 10, (name, restart)
        grace = re.fullmatch(r"(\d+)s", svc["stop_grace_period"])
        assert grace and int(grace.group(1)) >= 30, name


def test_fleet_compose_gives_up_and_keeps_its_state_where_the_image_user_can_write() -> None:
    """compose.fleet.yaml: the same bounded restart (a fleet exits 2 or 3 only when none of its
    personas can run, which a restart cannot fix), and each shard's state volume, control socket
    and heartbeat on the image's VOLUME: a new named volume copies that folder's owner (uid
    10001), where one mounted on a path the image lacks is root's, and every persona stopped
    with exit 3 (seen under Docker by tests/docker/smoke.sh)."""
    data = yaml.safe_load(FLEET_COMPOSE.read_text(encoding="utf-8"))
    assert len(data["services"]) >= 2
    for name, svc in data["services"].items():
        restart = svc["restart"]
        found = re.fullmatch(r"on-failure:(\d+)", restart)
        assert found and 1 <= int(found.group(1)) <= 10, (name, restart)
        mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
        assert mounts.get(STATE) in data["volumes"], (name, mounts)
        assert svc["environment"]["GLIMPSE_FLEET_CONTROL"].startswith(f"{STATE}/"), name
        # `fleet health` asks the socket GLIMPSE_FLEET_CONTROL names (checked above).
        assert svc["healthcheck"]["test"][1:4] == ["glimpse-agent", "fleet", "health"], name
