"""`glimpse-agent sandbox --days 7`: zero configuration, every shipped persona lives a week
against the built-in emulators and keeps its promises; the report opens in a browser."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from glimpse_agent.cli import main
from glimpse_agent.config import load_persona

ROOT = Path(__file__).resolve().parents[1]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.imgs.append(dict(attrs).get("src") or "")


def test_sandbox_week_keeps_every_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each shipped persona posts exactly its planned number every day, never a 429 or a
    duplicate, and the HTML report shows every post as an embedded thumbnail."""
    state = tmp_path / "sbx"
    code = main(["sandbox", "--days", "7", "--state-dir", str(state), "--start", "2026-03-23"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out
    assert "All checks passed." in out
    personas = [load_persona(p) for p in sorted((ROOT / "personas").glob("*.toml"))]
    total_posts = 0
    for persona in personas:
        after = out.split(f"\n{persona.name}:\n", 1)[1].splitlines()
        block = "\n".join(
            line
            for line in after[
                : next((i for i, line in enumerate(after) if not line.startswith("  ")), len(after))
            ]
        )
        days = re.findall(r"^  (\d{4}-\d\d-\d\d)  posts (\d+)/(\d+)", block, re.M)
        assert len(days) >= 7, block
        for day, done, planned in days:
            assert done == planned, f"{persona.name} {day}"
        full_days = [int(p) for _, _, p in days[1:-1]]
        chatty = persona.engagement.comments_per_day >= persona.engagement.sessions_per_day
        if chatty and persona.engagement.reply_to_comments:
            # A chatty persona answers comments on its posts AND keeps commenting on others'.
            talk = re.findall(r"comments (\d+)  replies (\d+)", block)
            assert all(int(c) > 0 for c, _ in talk), (persona.name, talk)
            assert sum(int(r) for _, r in talk) > 0, (persona.name, talk)
        assert all(p == persona.posts_per_day for p in full_days), (persona.name, days)
        total_posts += sum(int(d) for _, d, _ in days)
        facts = re.search(rf"^{persona.name}: (\d+) posts.*429s (\d+); duplicates 0$", out, re.M)
        assert facts is not None and facts.group(2) == "0"
    report = state / "report.html"
    html = report.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(html)
    assert len(parser.imgs) == total_posts
    assert all(src.startswith("data:image/jpeg;base64,") for src in parser.imgs)
    # The spring-forward night (2026-03-29 in Europe) is inside this week on purpose.
    assert "2026-03-29" in out
    # The planner's ideas are fresh: no post is ever skipped for want of a new idea.
    assert "post_skipped" not in captured.err
    # What was run can be inspected afterwards.
    assert main(["status", "-c", str(state / "aurora" / "agent.toml"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["recent_posts"]) == 5


def test_sandbox_refuses_a_folder_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sandbox never deletes a folder it did not create."""
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["sandbox", "--days", "1", "--state-dir", str(tmp_path)])
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"
