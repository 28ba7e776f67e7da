"""agent.toml and persona files: every broken config is refused with exit code 2 and one clear
message per problem naming the file and the key, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glimpse_agent.cli import main
from glimpse_agent.config import KEY_FILE_NAME, load_agent, load_config
from glimpse_agent.errors import ConfigError

PERSONA = textwrap.dedent("""
    name = "tester"
    timezone = "Europe/Paris"
    active_hours = ["08:00", "22:00"]
    posts_per_day = 2
    topics = ["lighthouses"]
    hashtags = ["#aiart"]
""")

GOOD = textwrap.dedent("""
    persona = "persona.toml"
    state_dir = "state"
    [glimpse]
    base_url = "http://127.0.0.1:9/api/v1"
    api_key = "${GLIMPSE_API_KEY}"
    [images]
    order = ["local"]
""")


def write(tmp: Path, agent: str, persona: str = PERSONA) -> Path:
    (tmp / "persona.toml").write_text(persona, encoding="utf-8")
    path = tmp / "agent.toml"
    path.write_text(agent, encoding="utf-8")
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIMPSE_API_KEY", "glm_testkey_123456")


def test_good_config_loads_with_paths_resolved_against_its_folder(
    tmp_path: Path, env: None
) -> None:
    """Relative persona and state_dir paths resolve against the config file's folder."""
    loaded = load_agent(write(tmp_path, GOOD))
    assert loaded.config.state_dir == tmp_path / "state"
    assert loaded.persona.name == "tester"
    assert loaded.config.glimpse_key() == "glm_testkey_123456"


def test_shipped_example_and_personas_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """agent.toml.example and every personas/*.toml validate (they are the documentation)."""
    root = Path(__file__).resolve().parents[1]
    for var in (
        "GLIMPSE_API_KEY",
        "GLIF_API_TOKEN",
        "VIEWCOMFY_CLIENT_ID",
        "VIEWCOMFY_CLIENT_SECRET",
        "HF_TOKEN",
        "OPENAI_API_KEY",
        "LANGFLOW_API_KEY",
    ):
        monkeypatch.setenv(var, f"value-of-{var}")
    loaded = load_agent(root / "agent.toml.example")
    assert loaded.config.images.chain == ["openai"]  # one backend on, the others commented out
    personas = sorted((root / "personas").glob("*.toml"))
    assert len(personas) >= 3
    zones = set()
    for p in personas:
        from glimpse_agent.config import load_persona

        zones.add(load_persona(p).timezone)
    assert len(zones) == len(personas), "shipped personas should differ in time zone"


def test_secret_file_twin_reads_the_secret(tmp_path: Path) -> None:
    """api_key_file reads the key from a file (systemd credentials, Docker secrets)."""
    (tmp_path / "glimpse.key").write_text("glm_fromfile_123456\n", encoding="utf-8")
    cfg = GOOD.replace('api_key = "${GLIMPSE_API_KEY}"', 'api_key_file = "glimpse.key"')
    config = load_config(write(tmp_path, cfg))
    assert config.glimpse.api_key is not None
    assert config.glimpse.api_key.get_secret_value() == "glm_fromfile_123456"
    assert "glm_fromfile" not in repr(config)


def test_env_default_syntax(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR:-default} falls back to the default when VAR is unset."""
    monkeypatch.delenv("GLIMPSE_URL", raising=False)
    cfg = GOOD.replace(
        'base_url = "http://127.0.0.1:9/api/v1"',
        'base_url = "${GLIMPSE_URL:-http://127.0.0.1:8/api/v1}"',
    )
    monkeypatch.setenv("GLIMPSE_API_KEY", "glm_x_123456")
    assert load_config(write(tmp_path, cfg)).glimpse.base_url == "http://127.0.0.1:8/api/v1"


def test_registered_key_file_is_used_when_config_has_none(tmp_path: Path) -> None:
    """Without glimpse.api_key, the key `register` stored in the state dir is used."""
    cfg = GOOD.replace('api_key = "${GLIMPSE_API_KEY}"\n', "")
    config = load_config(write(tmp_path, cfg))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / KEY_FILE_NAME).write_text("glm_stored_123456", encoding="utf-8")
    assert config.glimpse_key() == "glm_stored_123456"


BROKEN: list[tuple[str, str, str, str]] = [
    # (id, agent.toml text, persona text, expected fragment "key: message")
    (
        "missing env var",
        GOOD.replace("${GLIMPSE_API_KEY}", "${NOT_SET_ANYWHERE}"),
        PERSONA,
        "glimpse.api_key: environment variable NOT_SET_ANYWHERE is not set",
    ),
    ("not toml", "persona = [", PERSONA, "not valid TOML"),
    (
        "missing persona key",
        GOOD.replace('persona = "persona.toml"\n', ""),
        PERSONA,
        "persona: is required",
    ),
    (
        "persona file missing",
        GOOD.replace("persona.toml", "nope.toml"),
        PERSONA,
        "nope.toml: file not found",
    ),
    (
        "typo in section key",
        GOOD.replace("base_url =", "base_ulr ="),
        PERSONA,
        "glimpse.base_ulr: unknown key (did you mean 'base_url'?)",
    ),
    (
        "bad url",
        GOOD.replace("http://127.0.0.1:9/api/v1", "ftp://x"),
        PERSONA,
        "glimpse.base_url: String should match pattern",
    ),
    (
        "unknown image backend",
        GOOD.replace('order = ["local"]', 'order = ["dalle"]'),
        PERSONA,
        "images.order.0: Input should be 'glif'",
    ),
    (
        "order names unconfigured backend",
        GOOD.replace('order = ["local"]', 'order = ["glif"]'),
        PERSONA,
        "images: order names glif but there is no [images.glif] section",
    ),
    (
        "glif section without token",
        GOOD + '\n[images.glif]\nglif_id = "abc"\n',
        PERSONA,
        "images.glif.token: is required",
    ),
    (
        "retired openai model",
        GOOD + '\n[images.openai]\napi_key = "sk-abcdef"\nmodel = "dall-e-3"\n',
        PERSONA,
        "images.openai.model: dall-e-3 is retired",
    ),
    (
        "both secret and file",
        GOOD.replace('api_key = "${GLIMPSE_API_KEY}"', 'api_key = "a"\napi_key_file = "k"'),
        PERSONA,
        "glimpse.api_key_file: give either api_key or api_key_file, not both",
    ),
    (
        "secret file missing",
        GOOD.replace('api_key = "${GLIMPSE_API_KEY}"', 'api_key_file = "missing.key"'),
        PERSONA,
        "glimpse.api_key_file: cannot read secret file",
    ),
    (
        "negative timeout",
        GOOD.replace("[images]", "[images]").replace(
            'api_key = "${GLIMPSE_API_KEY}"', 'api_key = "${GLIMPSE_API_KEY}"\ntimeout = -1'
        ),
        PERSONA,
        "glimpse.timeout: Input should be greater than 0",
    ),
    (
        "bad log level",
        'log_level = "loud"\n' + GOOD,
        PERSONA,
        "log_level: Input should be 'debug', 'info', 'warning' or 'error'",
    ),
    (
        "captions order langflow without section",
        GOOD + '\n[captions]\norder = ["langflow"]\n',
        PERSONA,
        "captions: order names langflow but there is no [captions.langflow] section",
    ),
    (
        "persona unknown timezone",
        GOOD,
        PERSONA.replace("Europe/Paris", "Mars/Olympus"),
        "persona.toml: timezone: unknown IANA time zone 'Mars/Olympus'",
    ),
    (
        "persona too many posts",
        GOOD,
        PERSONA.replace("posts_per_day = 2", "posts_per_day = 9"),
        "posts_per_day: Input should be less than or equal to 6",
    ),
    (
        "persona bad active hours",
        GOOD,
        PERSONA.replace('"22:00"', '"25:00"'),
        'active_hours: expected a local time as "HH:MM"',
    ),
    (
        "persona no topics",
        GOOD,
        PERSONA.replace('topics = ["lighthouses"]', "topics = []"),
        "topics: List should have at least 1 item",
    ),
    (
        "persona bad hashtag",
        GOOD,
        PERSONA.replace('"#aiart"', '"#ai art"'),
        "hashtags: Value error, hashtag '#ai art' must be",
    ),
    (
        "persona typo in engagement",
        GOOD,
        PERSONA + "[engagement]\nlikes_per_dya = 3\n",
        "engagement.likes_per_dya: unknown key (did you mean 'likes_per_day'?)",
    ),
    (
        "persona wrong type",
        GOOD,
        PERSONA.replace("posts_per_day = 2", 'posts_per_day = "many"'),
        "posts_per_day: Input should be a valid integer",
    ),
]


@pytest.mark.parametrize(
    ("agent", "persona", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_config_exits_2_naming_file_and_key(
    tmp_path: Path,
    env: None,
    capsys: pytest.CaptureFixture[str],
    agent: str,
    persona: str,
    expected: str,
) -> None:
    """`check` on a broken config exits 2 and prints the file, the key and what is expected."""
    path = write(tmp_path, agent, persona)
    code = main(["check", "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert expected.replace("Value error, ", "") in err, err
    assert str(tmp_path) in err, "the message must name the file"
    assert "Traceback" not in err


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several problems in agent.toml and the persona come out together, one line each."""
    agent = GOOD.replace("${GLIMPSE_API_KEY}", "${NOPE_1}").replace('["local"]', '["nope"]')
    with pytest.raises(ConfigError) as info:
        load_agent(write(tmp_path, agent))
    keys = {p.key for p in info.value.problems}
    assert {"glimpse.api_key", "images.order.0"} <= keys


def test_secret_values_never_appear_in_config_errors(tmp_path: Path) -> None:
    """A wrongly typed secret is reported without echoing its value."""
    agent = GOOD + '\n[images.openai]\napi_key = "sk-SECRETVALUE123"\nmodel = 5\n'
    with pytest.raises(ConfigError) as info:
        load_agent(write(tmp_path, agent))
    assert "SECRETVALUE" not in str(info.value)


def test_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    """The installed command, run as a process, exits 2 on a bad config with no traceback."""
    path = write(tmp_path, GOOD.replace("${GLIMPSE_API_KEY}", "${SURELY_UNSET_VAR}"))
    proc = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "SURELY_UNSET_VAR is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
