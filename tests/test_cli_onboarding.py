"""`glimpse-agent register` and `verify` against the emulated Glimpse: the key lands 0600 in a
0700 state dir and is never printed; verify activates it; refusals read clearly."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from glimpse_agent.cli import main
from glimpse_agent.config import KEY_FILE_NAME
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox

IMG = "https://img.example/boat.png"
EMAIL = "owner@example.com"


def register(glimpse: GlimpseSandbox, state: Path, name: str = "aurora", email: str = EMAIL) -> int:
    argv = ["register", "--name", name, "--email", email]
    return main([*argv, "--base-url", glimpse.base_url, "--state-dir", str(state)])


def verify(glimpse: GlimpseSandbox, state: Path, code: str) -> int:
    argv = ["verify", "--code", code, "--base-url", glimpse.base_url, "--state-dir", str(state)]
    return main(argv)


async def post_with(glimpse: GlimpseSandbox, key: str) -> str:
    async with GlimpseClient(glimpse.base_url, key, clock=glimpse.clock) as client:
        post = await client.create_post(caption="first light", image_url=IMG)
    return post.caption


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_register_then_verify_activates_the_stored_key(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """register stores the key 0600 (dir 0700) without printing it; verify makes it post."""
    state = tmp_path / "state"
    assert register(glimpse, state) == 0
    out, err = capsys.readouterr()
    key_file = state / KEY_FILE_NAME
    key = key_file.read_text(encoding="utf-8").strip()
    assert key.startswith("glm_")
    assert mode(key_file) == 0o600 and mode(state) == 0o700
    assert str(key_file) in out and "verify --code" in out
    assert key not in out + err
    assert [p.name for p in state.iterdir()] == [KEY_FILE_NAME]  # no temp file left

    assert verify(glimpse, state, glimpse.world.outbox[EMAIL]) == 0
    out, err = capsys.readouterr()
    assert "Verified: the key of agent 'aurora'" in out
    assert key not in out + err
    assert asyncio.run(post_with(glimpse, key)) == "first light"


def test_register_into_an_existing_open_dir_tightens_it(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state dir that already exists group/world-readable is brought down to 0700."""
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o755)
    assert register(glimpse, state) == 0
    assert mode(state) == 0o700 and mode(state / KEY_FILE_NAME) == 0o600
    capsys.readouterr()


def test_register_with_a_config_uses_its_url_and_state_dir(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-c agent.toml: URL and state_dir from the config; an api_key naming an unset variable
    (as in the example) is ignored with a note; the next-step hint repeats -c."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'persona = "p.toml"\nstate_dir = "st"\n[glimpse]\nbase_url = "{glimpse.base_url}"\n'
        'api_key = "${SURELY_UNSET_GLIMPSE_KEY}"\n',
        encoding="utf-8",
    )
    assert main(["register", "--name", "aurora", "--email", EMAIL, "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "st" / KEY_FILE_NAME).is_file()
    assert f"glimpse-agent verify --code NNNNNN -c {config}" in out
    assert "ignoring glimpse.api_key" in err and "SURELY_UNSET_GLIMPSE_KEY is not set" in err
    assert main(["verify", "--code", glimpse.world.outbox[EMAIL], "-c", str(config)]) == 0


def test_a_taken_name_is_a_clear_failure_and_stores_nothing(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Name taken: exit 1, 'already taken' and the way out on stderr, no key file, no temp."""
    glimpse.agent("aurora")
    state = tmp_path / "state"
    assert register(glimpse, state) == 1
    out, err = capsys.readouterr()
    assert "'aurora' is already taken" in err and "--name" in err
    assert out == ""
    assert list(state.iterdir()) == []


def test_rate_limited_registration_says_when_to_retry(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sixth registration in an hour: exit 1 with 'rate limited' and a retry time."""
    for i in range(5):
        assert register(glimpse, tmp_path / f"s{i}", f"agent_{i}", f"o{i}@x.io") == 0
    capsys.readouterr()
    assert register(glimpse, tmp_path / "late", "late_one", "late@x.io") == 1
    err = capsys.readouterr().err
    assert "rate limited" in err and "try again in " in err and " min" in err, err
    assert not (tmp_path / "late" / KEY_FILE_NAME).exists()


def test_register_refuses_to_overwrite_a_stored_key(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key file already there: exit 1 and the file is untouched (no second registration)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / KEY_FILE_NAME).write_text("glm_existing_key_000000\n", encoding="utf-8")
    assert register(glimpse, state) == 1
    assert "already holds a key" in capsys.readouterr().err
    assert (state / KEY_FILE_NAME).read_text(encoding="utf-8") == "glm_existing_key_000000\n"
    assert glimpse.world.agent_id_by_name("aurora") is None


def test_an_unusable_state_dir_fails_before_registering(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """State dir cannot be made: exit 3 and no agent registered (its key would be lost)."""
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    assert register(glimpse, tmp_path / "a_file" / "state") == 3
    assert "for the key" in capsys.readouterr().err
    assert glimpse.world.agent_id_by_name("aurora") is None


def test_a_wrong_code_is_refused_and_the_key_stays_unverified(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong code: exit 1 with 'refused the code'; the latest code still works after."""
    state = tmp_path / "state"
    assert register(glimpse, state) == 0
    code = glimpse.world.outbox[EMAIL]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert verify(glimpse, state, wrong) == 1
    assert "refused the code" in capsys.readouterr().err
    assert verify(glimpse, state, code) == 0


def test_verify_needs_a_key_and_a_six_digit_code(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No stored key: exit 1 pointing at register; a malformed code: exit 2."""
    assert verify(glimpse, tmp_path / "empty", "123456") == 1
    assert "glimpse-agent register" in capsys.readouterr().err
    assert verify(glimpse, tmp_path / "empty", "12ab") == 2
    assert "6-digit" in capsys.readouterr().err


def test_register_with_key_file_writes_the_key_there_0600_and_verify_reads_it(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--key-file: the key goes straight to that file (0600, missing folders made 0700), not to
    the state dir, and is never printed; `verify --key-file` activates it."""
    state = tmp_path / "state"
    key_file = tmp_path / "credstore" / "glimpse" / "api_key"
    argv = ["register", "--name", "aurora", "--email", EMAIL, "--base-url", glimpse.base_url]
    assert main([*argv, "--state-dir", str(state), "--key-file", str(key_file)]) == 0
    out, err = capsys.readouterr()
    key = key_file.read_text(encoding="utf-8").strip()
    assert key.startswith("glm_")
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700 and mode(key_file.parent.parent) == 0o700
    assert [p.name for p in key_file.parent.iterdir()] == ["api_key"]  # no temp file left
    assert not state.exists()
    assert key not in out + err
    assert str(key_file) in out and f"verify --code NNNNNN --base-url {glimpse.base_url}" in out
    assert f"--key-file {key_file}" in out

    code = glimpse.world.outbox[EMAIL]
    verify_argv = ["verify", "--code", code, "--base-url", glimpse.base_url]
    assert main([*verify_argv, "--key-file", str(key_file)]) == 0
    out, err = capsys.readouterr()
    assert key not in out + err
    assert asyncio.run(post_with(glimpse, key)) == "first light"


def test_key_file_in_an_existing_open_folder_leaves_the_folder_alone(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --key-file beside other things (a home directory, say): the file is 0600 but the
    folder's own mode is not changed, unlike a state dir; an existing key is never overwritten."""
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o755)
    key_file = home / "glimpse_key"
    argv = ["register", "--name", "aurora", "--email", EMAIL, "--base-url", glimpse.base_url]
    assert main([*argv, "--key-file", str(key_file)]) == 0
    assert mode(key_file) == 0o600 and mode(home) == 0o755
    first = key_file.read_text(encoding="utf-8")
    capsys.readouterr()

    again = ["register", "--name", "other", "--email", "x@example.com"]
    assert main([*again, "--base-url", glimpse.base_url, "--key-file", str(key_file)]) == 1
    assert "already holds a key" in capsys.readouterr().err
    assert key_file.read_text(encoding="utf-8") == first
    assert glimpse.world.agent_id_by_name("other") is None


def test_register_with_a_config_whose_key_file_is_not_written_yet(
    glimpse: GlimpseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-c agent.toml naming api_key_file (not there yet) + --key-file that file: the missing
    file is no configuration error; afterwards the config loads the key from it."""
    key_file = tmp_path / "creds" / "glimpse"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'persona = "p.toml"\nstate_dir = "st"\n[glimpse]\nbase_url = "{glimpse.base_url}"\n'
        f'api_key_file = "{key_file}"\n',
        encoding="utf-8",
    )
    argv = ["register", "--name", "aurora", "--email", EMAIL, "-c", str(config)]
    assert main([*argv, "--key-file", str(key_file)]) == 0
    out, _ = capsys.readouterr()
    assert f"glimpse-agent verify --code NNNNNN -c {config} --key-file {key_file}" in out
    assert main(["verify", "--code", glimpse.world.outbox[EMAIL], "-c", str(config)]) == 0
    assert not (tmp_path / "st").exists()
