"""The sandbox's report.html: its per-local-day table lists the days that were simulated, and a
local day beyond either end only when something happened on it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from glimpse_agent.cli import main

ROOT = Path(__file__).resolve().parents[1]


class _LocalDays(HTMLParser):
    """persona name -> the rows (cells as text) of its "Per local day" table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self._persona: str | None = None
        self._section = ""
        self._in: str | None = None
        self._text = ""
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3", "td"):
            self._in, self._text = tag, ""
        elif tag == "tr":
            self._row = []

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag != self._in and tag != "tr":
            return
        if tag == "h2":
            found = re.search(r"\((\w+), ", self._text)
            self._persona = found.group(1) if found else None
        elif tag == "h3":
            self._section = self._text.strip()
        elif tag == "td" and self._row is not None:
            self._row.append(self._text.strip())
        elif tag == "tr" and self._row and self._persona and self._section == "Per local day":
            self.rows.setdefault(self._persona, []).append(self._row)
        self._in = None


def test_report_lists_only_simulated_days_or_days_with_activity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `sandbox --days 1` from 2026-12-01 00:00 UTC, kuro (Tokyo, ahead of UTC) shows
    2026-12-01 and no empty row for 2026-12-02; a persona in Los Angeles (behind UTC), active on
    the evening of its 2026-11-30, keeps that partly simulated day next to 2026-12-01."""
    west = tmp_path / "west.toml"
    moss = (ROOT / "personas" / "moss.toml").read_text(encoding="utf-8")
    west.write_text(
        re.sub(
            r"(?m)^active_hours .*$",
            'active_hours = ["06:30", "23:30"]',
            re.sub(r"(?m)^timezone .*$", 'timezone = "America/Los_Angeles"', moss),
        ),
        encoding="utf-8",
    )
    state = tmp_path / "sbx"
    argv = ["sandbox", "--days", "1", "--start", "2026-12-01", "--state-dir", str(state)]
    argv += ["--persona", str(ROOT / "personas" / "kuro.toml"), "--persona", str(west)]
    assert main(argv) == 0, capsys.readouterr().out

    parser = _LocalDays()
    parser.feed((state / "report.html").read_text(encoding="utf-8"))
    kuro, west_rows = parser.rows["kuro"], parser.rows["moss"]
    assert [row[0] for row in kuro] == ["2026-12-01"]
    assert [row[0] for row in west_rows] == ["2026-11-30", "2026-12-01"]
    # The day before the first UTC day is there because it had engagement sessions.
    assert int(west_rows[0][-1]) > 0
