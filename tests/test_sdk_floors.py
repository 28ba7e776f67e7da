"""The SDK floors in pyproject.toml name versions whose exceptions our error translation uses.

Our translation of SDK failures (imaging/backends/openai_images.py, huggingface.py,
writing/llm.py) imports the SDKs' own names and ``httpx2``, their HTTP stack since openai 3.0.0
and huggingface_hub 2.0.0. Installing the floor versions needs the package index (this one
only holds the newest), so this test reads the floors instead: each is at least the version
that introduced the stack we translate, every name the translation reads exists in the
installed SDK, the installed SDKs sit on httpx2, and constraints.txt pins inside the floors.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "glimpse_agent"

#: distribution -> (first version on httpx2, where that is written down)
INTRODUCED = {
    "openai": (
        Version("3.0.0"),
        "openai-python v3.0.0 (2026-08-12): HTTPX2 is now the default HTTP client",
    ),
    "huggingface-hub": (
        Version("2.0.0"),
        "huggingface_hub v2.0.0 'The httpx2 release': transport exceptions come from httpx2",
    ),
}
#: The modules that translate SDK errors, and the local name each gives each module.
TRANSLATORS = {
    SRC / "imaging" / "backends" / "openai_images.py": {"openai": "openai", "httpx2": "httpx2"},
    SRC / "imaging" / "backends" / "huggingface.py": {
        "hub": "huggingface_hub",
        "httpx2": "httpx2",
    },
    SRC / "writing" / "llm.py": {"openai": "openai"},
}


def floors() -> dict[str, Version]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: dict[str, Version] = {}
    for line in data["project"]["dependencies"]:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if lows:
            found[req.name.lower()] = max(lows)
    return found


def used_names() -> set[tuple[str, str]]:
    """``(module, dotted name)`` for every ``alias.Name`` the translators read."""
    names: set[tuple[str, str]] = set()
    for path, aliases in TRANSLATORS.items():
        text = path.read_text(encoding="utf-8")
        for alias, module in aliases.items():
            for match in re.finditer(rf"\b{alias}\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", text):
                names.add((module, match.group(1)))
    return names


@pytest.mark.parametrize("dist", sorted(INTRODUCED))
def test_floor_is_at_least_the_version_that_introduced_what_we_translate(dist: str) -> None:
    """pyproject's floor for each SDK is no lower than its first httpx2 release."""
    introduced, why = INTRODUCED[dist]
    floor = floors().get(dist)
    assert floor is not None, f"{dist} has no floor in pyproject.toml"
    assert floor >= introduced, f"{dist}>={floor} is below {introduced} ({why})"


def test_every_name_the_translation_reads_exists_in_the_installed_sdks() -> None:
    """openai.APITimeoutError, hub.errors.HfHubHTTPError, httpx2.ReadError...: all there."""
    names = used_names()
    assert ("openai", "APIStatusError") in names and ("httpx2", "ReadError") in names
    assert ("huggingface_hub", "errors.HfHubHTTPError") in names
    missing = []
    for module_name, dotted in sorted(names):
        target: object = importlib.import_module(module_name)
        for part in dotted.split("."):
            if not hasattr(target, part):
                missing.append(f"{module_name}.{dotted}")
                break
            target = getattr(target, part)
    assert missing == []


@pytest.mark.parametrize("dist", sorted(INTRODUCED))
def test_installed_sdks_are_within_the_floors_and_on_httpx2(dist: str) -> None:
    """What we test against satisfies the floor and sends through httpx2."""
    installed = Version(importlib.metadata.version(dist))
    assert installed >= floors()[dist]
    requires = [Requirement(r) for r in importlib.metadata.requires(dist) or []]
    assert any(r.name == "httpx2" and r.marker is None for r in requires), requires


def test_constraints_pin_versions_inside_the_floors() -> None:
    """constraints.txt (the Docker image's pins) agrees with pyproject's floors."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = Version(version.strip())
    for dist, floor in floors().items():
        if dist in pins:
            assert pins[dist] >= floor, f"constraints.txt pins {dist}=={pins[dist]} < {floor}"
    for dist in INTRODUCED:
        assert dist in pins, f"constraints.txt does not pin {dist}"
