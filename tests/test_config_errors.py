"""More broken configs, as a user writes them by hand: each is refused by `check` with exit
code 2 and one message naming the file, the key and what is expected, never a traceback; and
what `check` prints about a config that loads but cannot run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glimpse_agent.cli import main
from glimpse_agent.config import load_config
from glimpse_agent.errors import ConfigError
from glimpse_agent.redaction import mask_values

PERSONA = textwrap.dedent("""
    name = "tester"
    timezone = "Europe/Paris"
    active_hours = ["08:00", "22:00"]
    posts_per_day = 2
    topics = ["lighthouses"]
""")

GOOD = textwrap.dedent("""
    persona = "persona.toml"
    [glimpse]
    base_url = "http://127.0.0.1:9/api/v1"
    api_key = "${GLIMPSE_API_KEY}"
    [images]
    order = ["local"]
""")


def write(tmp: Path, agent: str, persona: str | bytes = PERSONA) -> Path:
    if isinstance(persona, bytes):
        (tmp / "persona.toml").write_bytes(persona)
    else:
        (tmp / "persona.toml").write_text(persona, encoding="utf-8")
    path = tmp / "agent.toml"
    path.write_text(agent, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIMPSE_API_KEY", "glm_testkey_123456")
    monkeypatch.setenv("EMPTY_VAR", "")


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--log-level", "warning", "check", "-c", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BROKEN: list[tuple[str, str, str | bytes, str]] = [
    # (id, agent.toml, persona, the whole expected line after "<tmp>/")
    (
        "env var set but empty",
        GOOD.replace("${GLIMPSE_API_KEY}", "${EMPTY_VAR}"),
        PERSONA,
        "agent.toml: glimpse.api_key: environment variable EMPTY_VAR is set but empty",
    ),
    (
        "malformed reference",
        GOOD.replace("${GLIMPSE_API_KEY}", "${glimpse-key}"),
        PERSONA,
        "agent.toml: glimpse.api_key: malformed environment reference '${glimpse-key}'",
    ),
    (
        "empty reference",
        GOOD.replace("${GLIMPSE_API_KEY}", "${}"),
        PERSONA,
        "agent.toml: glimpse.api_key: malformed environment reference '${}'",
    ),
    (
        "unclosed reference",
        GOOD.replace("${GLIMPSE_API_KEY}", "${GLIMPSE_API_KEY"),
        PERSONA,
        "agent.toml: glimpse.api_key: malformed environment reference '${GLIMPSE_API_KEY'",
    ),
    (
        "section given as a string",
        GOOD.replace('[glimpse]\nbase_url = "http://127.0.0.1:9/api/v1"\n', "")
        .replace('api_key = "${GLIMPSE_API_KEY}"\n', "")
        .replace("persona.toml", 'persona.toml"\nglimpse = "http://x'),
        PERSONA,
        "agent.toml: glimpse: expected a table (a [glimpse] section or { key = value })",
    ),
    (
        "persona given as a number",
        GOOD.replace('"persona.toml"', "5"),
        PERSONA,
        "agent.toml: persona: expected a file path as a string",
    ),
    (
        "persona empty",
        GOOD.replace('"persona.toml"', '""'),
        PERSONA,
        "agent.toml: persona: is empty, expected a path",
    ),
    (
        "persona is a directory",
        GOOD.replace('"persona.toml"', '"."'),
        PERSONA,
        ": is a directory, expected a .toml file (named by persona in ",
    ),
    (
        "persona is binary",
        GOOD,
        b"\xff\xfe\x00\x01 binary",
        "persona.toml: is not UTF-8 text, expected a .toml file (named by persona in ",
    ),
    (
        "persona not toml",
        GOOD,
        'name = "x\n',
        "persona.toml: not valid TOML",
    ),
    (
        "captions order names llm without [llm]",
        GOOD + '\n[captions]\norder = ["llm", "template"]\n',
        PERSONA,
        "agent.toml: captions.order: names llm but there is no [llm] section",
    ),
    (
        "llm without model",
        GOOD + '\n[llm]\nbase_url = "http://127.0.0.1:9/v1"\n',
        PERSONA,
        "agent.toml: llm.model: is required",
    ),
    (
        "glimpse images provider unknown",
        GOOD + '\n[images.glimpse]\nprovider = "midjourney"\napi_key = "x"\n',
        PERSONA,
        "agent.toml: images.glimpse.provider: Input should be 'huggingface', 'openai'",
    ),
    (
        "image order given as a string",
        GOOD.replace('order = ["local"]', 'order = "local"'),
        PERSONA,
        "agent.toml: images.order: Input should be a valid list",
    ),
    (
        "duplicate key",
        'persona = "a.toml"\n' + GOOD,
        PERSONA,
        "agent.toml: not valid TOML: Cannot overwrite a value",
    ),
]


@pytest.mark.parametrize(
    ("agent", "persona", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_config_names_file_key_and_expectation(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    agent: str,
    persona: str | bytes,
    expected: str,
) -> None:
    """`check` exits 2 and prints one line per problem, starting with the file's path."""
    code, out, err = check(write(tmp_path, agent, persona), capsys)
    assert code == 2, out + err
    assert "Traceback" not in err and out == ""
    problems = [ln.strip() for ln in err.splitlines()[1:]]
    assert len(problems) == 1, err
    assert problems[0].startswith(str(tmp_path)), err
    assert expected in problems[0], err


def test_binary_secret_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An api_key_file that is not text is one clear problem, not a UnicodeDecodeError."""
    (tmp_path / "key.bin").write_bytes(b"\xff\xfe\x00\x01")
    cfg = GOOD.replace('api_key = "${GLIMPSE_API_KEY}"', 'api_key_file = "key.bin"')
    code, _, err = check(write(tmp_path, cfg), capsys)
    assert code == 2 and "Traceback" not in err
    assert f"glimpse.api_key_file: secret file {tmp_path / 'key.bin'} is not UTF-8 text" in err


def test_unreadable_secret_file_of_a_required_key_is_one_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing token_file says so once, without a second "token: is required" line."""
    cfg = GOOD + '\n[images.glif]\ntoken_file = "nope.txt"\nglif_id = "abc"\n'
    code, _, err = check(write(tmp_path, cfg), capsys)
    assert code == 2
    assert "images.glif.token_file: cannot read secret file" in err
    assert "token: is required" not in err
    assert "(1 problem)" in err


def test_empty_env_var_takes_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR:-default} uses the default when VAR is set but empty, as the shell does."""
    cfg = GOOD.replace(
        "http://127.0.0.1:9/api/v1", "${EMPTY_VAR:-http://127.0.0.1:8/api/v1}"
    ).replace("${GLIMPSE_API_KEY}", "a${GLIMPSE_API_KEY}z")
    config = load_config(write(tmp_path, cfg))
    assert config.glimpse.base_url == "http://127.0.0.1:8/api/v1"
    assert config.glimpse.api_key is not None
    assert config.glimpse.api_key.get_secret_value() == "aglm_testkey_123456z"


def test_a_dollar_that_is_no_reference_stays(tmp_path: Path) -> None:
    """Only "${" starts a reference: a lone "$" in a value is kept as written."""
    cfg = GOOD.replace('api_key = "${GLIMPSE_API_KEY}"', 'api_key = "pa$$word_123456"')
    config = load_config(write(tmp_path, cfg))
    assert config.glimpse.api_key is not None
    assert config.glimpse.api_key.get_secret_value() == "pa$$word_123456"


def test_every_env_problem_of_a_value_is_reported(tmp_path: Path) -> None:
    """Two unset variables in one value are two problems, each naming its variable."""
    cfg = GOOD.replace("${GLIMPSE_API_KEY}", "${UNSET_ONE_X}${UNSET_TWO_X}")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, cfg))
    messages = [p.message for p in info.value.problems]
    assert messages == [
        "environment variable UNSET_ONE_X is not set",
        "environment variable UNSET_TWO_X is not set",
    ]


def test_state_dir_under_a_file_fails_the_config_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state_dir the daemon could never create is reported on check's config line."""
    (tmp_path / "plain-file").write_text("x", encoding="utf-8")
    cfg = 'state_dir = "plain-file/state"\n' + GOOD
    code, out, _ = check(write(tmp_path, cfg), capsys)
    assert code == 1
    config_line = out.splitlines()[0]
    assert config_line.startswith("FAILED  config")
    assert f"{tmp_path / 'plain-file'} is not a directory" in config_line
    assert not (tmp_path / "plain-file" / "state").exists()  # check creates nothing


def test_a_short_key_does_not_mangle_check_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A placeholder key like "n" is masked as a word, not inside every word containing it,
    and an unreachable Glimpse is named by its URL."""
    cfg = GOOD.replace('"${GLIMPSE_API_KEY}"', '"n"')
    code, out, _ = check(write(tmp_path, cfg), capsys)
    assert code == 1
    glimpse_line = next(ln for ln in out.splitlines() if ln.split()[1:2] == ["glimpse"])
    assert "***" not in glimpse_line, glimpse_line
    assert "cannot reach Glimpse at http://127.0.0.1:9/api/v1 (ConnectError" in glimpse_line


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("Name or service not known", ["k"], "Name or service not known"),
        ("key=k; other", ["k"], "key=***; other"),
        ("token abc in abcdef", ["abc"], "token *** in abcdef"),
        ("glm_longsecret1 and glm_longsecret12", ["glm_longsecret1"], "*** and ***2"),
        ("outer-secret-value", ["secret", "outer-secret-value"], "***"),
    ],
)
def test_mask_values(text: str, secrets: list[str], expected: str) -> None:
    """Long secrets are masked anywhere; short ones only as whole tokens; longest first."""
    assert mask_values(text, secrets) == expected


def test_real_process_prints_every_problem_without_traceback(tmp_path: Path) -> None:
    """The command run as a process lists problems of agent.toml and persona together."""
    cfg = GOOD.replace("${GLIMPSE_API_KEY}", "${}")
    path = write(tmp_path, cfg, PERSONA.replace("posts_per_day = 2", "posts_per_day = 60"))
    proc = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "configuration error (2 problems)" in proc.stderr
    assert "glimpse.api_key: malformed environment reference" in proc.stderr
    assert "posts_per_day: Input should be less than or equal to 6" in proc.stderr
