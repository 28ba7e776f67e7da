"""The one layout of docs/deploy.md: the config it gives reads the same state and the same
secrets under the unit (systemd's STATE_DIRECTORY and CREDENTIALS_DIRECTORY), from a root shell
(the defaults) and in a container (the image's ENV); every secret has its documented id; a bare
unit-only variable read from a shell says how to fix it; `register -c` writes the key where the
config reads it, and the README's onboarding steps work in the order written."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from deploy_facts import CREDENTIALS, DEPLOY_DOC, DOCKERFILE, REPO, UNIT
from glimpse_agent.cli import main
from glimpse_agent.config import load_config
from glimpse_agent.errors import ConfigError
from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox

SHELL_CREDENTIALS = "/etc/glimpse-agent/credentials/aurora"
UNIT_STATE = "/var/lib/glimpse-agent/aurora"
EMAIL = "owner@example.com"


def documented_config() -> str:
    """The config docs/deploy.md writes to /etc/glimpse-agent/aurora.toml."""
    found = re.search(
        r"cat > /etc/glimpse-agent/aurora\.toml <<'EOF'\n(.*?)\nEOF\n",
        DEPLOY_DOC.read_text(encoding="utf-8"),
        flags=re.S,
    )
    assert found, "docs/deploy.md no longer writes /etc/glimpse-agent/aurora.toml"
    return found.group(1) + "\n"


def secrets_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "glimpse").write_text("glm_layout_key_123456\n", encoding="utf-8")
    (folder / "openai").write_text("sk-layout-openai-123456\n", encoding="utf-8")
    return folder


def image_env() -> dict[str, str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    final = text.split("\nFROM ")[-1]
    return dict(re.findall(r"\b(STATE_DIRECTORY|CREDENTIALS_DIRECTORY)=(\S+)", final))


def test_the_unit_and_a_root_shell_read_the_same_state_and_secrets(tmp_path: Path) -> None:
    creds = secrets_folder(tmp_path / "run-credentials")
    config = tmp_path / "aurora.toml"
    config.write_text(documented_config(), encoding="utf-8")
    unit = load_config(
        config, env={"STATE_DIRECTORY": UNIT_STATE, "CREDENTIALS_DIRECTORY": str(creds)}
    )
    # From a root shell nothing is set: the defaults must be the very places the unit's
    # StateDirectory= and LoadCredential= use. Here the shell's credentials folder is the same
    # files, put where the default points.
    config.write_text(documented_config().replace(SHELL_CREDENTIALS, str(creds)), encoding="utf-8")
    shell = load_config(config, env={})
    assert unit.state_dir == shell.state_dir == Path(UNIT_STATE)
    assert unit.glimpse_key() == shell.glimpse_key() == "glm_layout_key_123456"
    for loaded in (unit, shell):
        assert loaded.images.openai is not None and loaded.llm is not None
        assert loaded.images.openai.api_key is not None and loaded.llm.api_key is not None
        assert loaded.images.openai.api_key.get_secret_value() == "sk-layout-openai-123456"
        assert loaded.llm.api_key.get_secret_value() == "sk-layout-openai-123456"


def test_a_root_shell_reads_the_files_the_unit_loads_its_credentials_from(tmp_path: Path) -> None:
    """Unchanged, from a shell the config names /etc/glimpse-agent/credentials/aurora/<id>:
    exactly the LoadCredential= sources of glimpse-agent@aurora."""
    config = tmp_path / "aurora.toml"
    config.write_text(documented_config(), encoding="utf-8")
    if Path(SHELL_CREDENTIALS).exists():
        pytest.skip(f"{SHELL_CREDENTIALS} exists on this machine")
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    read = {
        m.group(1)
        for p in info.value.problems
        if (m := re.match(r"cannot read secret file (\S+):", p.message))
    }
    loads = re.findall(r"^LoadCredential=(\w+):(\S+)$", UNIT.read_text(encoding="utf-8"), re.M)
    sources = {path.replace("%i", "aurora") for _, path in loads}
    assert read == {f"{SHELL_CREDENTIALS}/glimpse", f"{SHELL_CREDENTIALS}/openai"}
    assert read <= sources


def test_the_container_reads_the_volume_and_its_secrets_with_the_same_file(tmp_path: Path) -> None:
    env = image_env()
    assert env == {
        "STATE_DIRECTORY": "/var/lib/glimpse-agent",
        "CREDENTIALS_DIRECTORY": "/run/secrets",
    }
    secrets = secrets_folder(tmp_path / "run-secrets")
    config = tmp_path / "agent.toml"
    config.write_text(documented_config(), encoding="utf-8")
    loaded = load_config(config, env={**env, "CREDENTIALS_DIRECTORY": str(secrets)})
    assert loaded.state_dir == Path("/var/lib/glimpse-agent")  # the image's VOLUME
    assert loaded.glimpse_key() == "glm_layout_key_123456"


def test_every_secret_has_its_documented_credential_and_docker_secret() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `(\S+)_file` \| `(\w+)` \| `LoadCredential=(\w+):(\S+)` \| `(\S+)` \|$", text, re.M
    )
    assert {key: ident for key, ident, *_ in rows} == CREDENTIALS
    for _, ident, cred, path, secret in rows:
        assert cred == ident
        assert path == f"/etc/glimpse-agent/credentials/%i/{ident}"
        assert secret == f"/run/secrets/{ident}"


def test_a_bare_unit_variable_from_a_shell_is_exit_2_saying_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    config = tmp_path / "aurora.toml"
    config.write_text(
        'persona = "p.toml"\nstate_dir = "${STATE_DIRECTORY}"\n'
        '[glimpse]\nbase_url = "http://127.0.0.1:9/api/v1"\napi_key = "glm_x_123456"\n',
        encoding="utf-8",
    )
    assert main(["status", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(ln.strip() for ln in err.splitlines() if "state_dir" in ln)
    assert line.startswith(f"{config}: state_dir: environment variable STATE_DIRECTORY is not set")
    assert '"${STATE_DIRECTORY:-/the/same/path}"' in line and "docs/deploy.md" in line


def test_an_ordinary_unset_variable_keeps_its_plain_message(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        'persona = "p.toml"\nstate_dir = "${MY_STATE_ROOT_X}/aurora"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert [p.message for p in info.value.problems] == [
        "environment variable MY_STATE_ROOT_X is not set"
    ]


def test_register_with_a_config_writes_the_key_where_the_config_reads_it(
    glimpse: GlimpseSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The documented flow: the config names api_key_file with a credentials default; from a
    shell (no CREDENTIALS_DIRECTORY) `register -c` writes the key to that default, 0600, and
    `verify -c` and the config itself then read it, without any --key-file."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    creds = tmp_path / "credentials" / "aurora"
    config = tmp_path / "aurora.toml"
    config.write_text(
        f'persona = "p.toml"\nstate_dir = "state"\n[glimpse]\nbase_url = "{glimpse.base_url}"\n'
        f'api_key_file = "${{CREDENTIALS_DIRECTORY:-{creds}}}/glimpse"\n',
        encoding="utf-8",
    )
    assert main(["register", "--name", "aurora", "--email", EMAIL, "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    key_file = creds / "glimpse"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    key = key_file.read_text(encoding="utf-8").strip()
    assert key.startswith("glm_") and key not in out + err
    assert not (tmp_path / "state").exists()  # not into the state dir beside it
    assert f"`glimpse-agent verify --code NNNNNN -c {config}`" in out  # no --key-file needed
    assert "ignoring" not in err
    assert main(["verify", "--code", glimpse.world.outbox[EMAIL], "-c", str(config)]) == 0
    assert load_config(config).glimpse_key() == key


def test_the_readme_onboarding_steps_work_in_their_order(
    glimpse: GlimpseSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README: copy agent.toml.example to agent.toml, register, verify, then fill in the other
    keys and check. Register and verify work before the backend keys exist."""
    for var in ("GLIMPSE_API_KEY", "OPENAI_API_KEY", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running a real persona") :]
    steps = [s for s in re.findall(r"glimpse-agent (register|verify|check|plan|run)\b", section)]
    assert steps[:3] == ["register", "verify", "check"], steps
    assert section.index("cp agent.toml.example agent.toml") < section.index(
        "glimpse-agent register"
    )

    monkeypatch.chdir(tmp_path)
    example = (REPO / "agent.toml.example").read_text(encoding="utf-8")
    (tmp_path / "agent.toml").write_text(
        example.replace("https://glimpse-blush.vercel.app/api/v1", glimpse.base_url).replace(
            'persona   = "personas/aurora.toml"', f'persona = "{REPO}/personas/aurora.toml"'
        ),
        encoding="utf-8",
    )
    assert main(["register", "--name", "aurora", "--email", EMAIL, "-c", "agent.toml"]) == 0
    assert main(["verify", "--code", glimpse.world.outbox[EMAIL], "-c", "agent.toml"]) == 0
    capsys.readouterr()
    # Before the OpenAI key is there, check names it (and only it) and exits 2.
    assert main(["check", "-c", "agent.toml"]) == 2
    err = capsys.readouterr().err
    assert "images.openai.api_key: environment variable OPENAI_API_KEY is not set" in err
    assert "glimpse" not in err.replace("glimpse-agent", "")
    assert (tmp_path / "state" / "glimpse_api_key").is_file()
    assert os.stat(tmp_path / "state").st_mode & 0o077 == 0


def test_a_secret_the_unit_had_no_file_for_says_so(tmp_path: Path) -> None:
    """Under the unit, a secret without its file reads as the SetCredential= default (a lone
    newline): exit 2 naming the key and the file to create; elsewhere an empty file is just
    empty."""
    creds = secrets_folder(tmp_path / "run-credentials")
    (creds / "openai").write_text("\n", encoding="utf-8")
    config = tmp_path / "aurora.toml"
    config.write_text(documented_config(), encoding="utf-8")
    unit_env = {
        "STATE_DIRECTORY": UNIT_STATE,
        "CREDENTIALS_DIRECTORY": str(creds),
        "INVOCATION_ID": "0123456789abcdef",
    }
    for env, hint in ((unit_env, True), ({**unit_env, "INVOCATION_ID": ""}, False)):
        if not hint:
            del env["INVOCATION_ID"]
        with pytest.raises(ConfigError) as info:
            load_config(config, env=env)
        messages = {p.key: p.message for p in info.value.problems}
        assert set(messages) == {"images.openai.api_key_file", "llm.api_key_file"}
        message = messages["images.openai.api_key_file"]
        assert message.startswith(f"secret file {creds / 'openai'} is empty")
        assert ("no /etc/glimpse-agent/credentials/<instance>/openai" in message) is hint
