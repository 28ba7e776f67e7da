"""The systemd unit as systemd itself reads it: `systemd-analyze verify` finds nothing wrong
with an instance of it (but the binary an install puts in /opt), `systemd-analyze security`
rates its exposure at most 1.5, and every secret of a config has its credential."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy_facts import CREDENTIALS, UNIT, secret_keys

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (apt-get install systemd; .ci/run installs it)",
)
# The one message an install fixes: the venv the unit runs is not on a machine running tests.
MISSING_BINARY = re.compile(
    r"^glimpse-agent@aurora\.service: Command /opt/glimpse-agent/bin/glimpse-agent is not "
    r"executable: No such file or directory$"
)


def instance(tmp_path: Path) -> Path:
    """The template under an instance's name, as `systemctl start glimpse-agent@aurora` loads
    it (verifying the template itself would check a unit nobody runs)."""
    unit = tmp_path / "glimpse-agent@aurora.service"
    unit.write_text(UNIT.read_text(encoding="utf-8"), encoding="utf-8")
    return unit


def analyze(*args: str) -> str:
    assert SYSTEMD_ANALYZE is not None
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "--no-pager", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.stdout + proc.stderr


@needs_systemd_analyze
def test_systemd_analyze_verify_finds_nothing_but_the_missing_binary(tmp_path: Path) -> None:
    out = analyze("verify", str(instance(tmp_path)))
    findings = [ln for ln in out.splitlines() if ln.strip() and not MISSING_BINARY.match(ln)]
    assert findings == [], out


@needs_systemd_analyze
def test_systemd_analyze_security_rates_the_exposure_at_most_1_5(tmp_path: Path) -> None:
    out = analyze("security", "--offline=yes", str(instance(tmp_path)))
    found = re.search(r"Overall exposure level for glimpse-agent@aurora\.service: (\d+\.\d+)", out)
    assert found is not None, out
    assert float(found.group(1)) <= 1.5, out


def test_every_secret_of_a_config_has_a_credential_with_an_empty_default() -> None:
    """Each secret key of agent.toml has one credential id: LoadCredential= from
    /etc/glimpse-agent/credentials/%i/<id> and a SetCredential= default, so a persona needs
    files only for the services it uses. A new secret key without a credential fails here."""
    assert set(CREDENTIALS) == set(secret_keys())
    text = UNIT.read_text(encoding="utf-8")
    loads = dict(re.findall(r"^LoadCredential=(\w+):(\S+)$", text, flags=re.M))
    defaults = re.findall(r"^SetCredential=(\w+):(.*)$", text, flags=re.M)
    ids = set(CREDENTIALS.values())
    assert loads == {i: f"/etc/glimpse-agent/credentials/%i/{i}" for i in ids}
    # A lone newline: a config naming an unused secret reads it as empty (exit 2, key named).
    assert dict(defaults) == {i: r"\n" for i in ids}


def test_the_unit_runs_the_config_and_state_of_the_documented_layout() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert re.search(
        r"^ExecStart=/opt/glimpse-agent/bin/glimpse-agent run -c /etc/glimpse-agent/%i\.toml$",
        text,
        flags=re.M,
    )
    assert re.search(r"^StateDirectory=glimpse-agent/%i$", text, flags=re.M)
