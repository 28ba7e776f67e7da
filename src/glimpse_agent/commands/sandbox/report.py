"""A self-contained HTML report of a sandbox/simulate run: posts as thumbnails with captions,
quota use per bucket per day, and engagement per day. Images are embedded as data URIs so the
file opens in any browser with nothing else running."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from glimpse_agent.run.simulation import PersonaDay


@dataclass(frozen=True)
class ReportPost:
    persona: str
    when_local: str
    caption: str
    image: bytes | None
    mime_type: str = "image/png"
    image_url: str | None = None


@dataclass(frozen=True)
class PersonaReport:
    name: str
    display_name: str
    timezone: str
    days: Mapping[date, PersonaDay]
    quota_use: Mapping[date, Mapping[str, int]]  # UTC day -> bucket -> used
    quota_caps: Mapping[str, int]
    posts: Sequence[ReportPost]


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa;color:#222}
h1{margin-bottom:0}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ddd;padding:.3rem .6rem;
text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.card{width:200px;background:#fff;border:1px solid #ddd;
border-radius:6px;padding:.5rem}.card img{width:100%;border-radius:4px}
.card p{font-size:.8rem;white-space:pre-wrap;margin:.3rem 0}.when{color:#777;font-size:.75rem}
.full{color:#b00}
"""


def _img_src(post: ReportPost) -> str:
    if post.image is not None:
        return f"data:{post.mime_type};base64,{base64.b64encode(post.image).decode('ascii')}"
    return html.escape(post.image_url or "", quote=True)


def render(title: str, personas: Sequence[PersonaReport], *, notes: Sequence[str] = ()) -> str:
    e = html.escape
    out = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>",
    ]
    out += [f"<p>{e(n)}</p>" for n in notes]
    for p in personas:
        out.append(f"<h2>{e(p.display_name)} <small>({e(p.name)}, {e(p.timezone)})</small></h2>")
        out.append(
            "<h3>Per local day</h3><table><tr><th>day</th><th>posts / planned</th>"
            "<th>likes</th><th>comments</th><th>replies</th><th>follows</th>"
            "<th>sessions</th></tr>"
        )
        for day in sorted(p.days):
            d = p.days[day]
            out.append(
                f"<tr><td>{day}</td><td>{d.posts} / {d.planned_posts}</td><td>{d.likes}"
                f"</td><td>{d.comments}</td><td>{d.replies}</td><td>{d.follows}</td>"
                f"<td>{d.sessions}</td></tr>"
            )
        out.append("</table>")
        buckets = sorted(p.quota_caps)
        out.append(
            "<h3>Quota use per UTC day (used / daily cap)</h3><table><tr><th>day</th>"
            + "".join(f"<th>{e(b)}</th>" for b in buckets)
            + "</tr>"
        )
        for day in sorted(p.quota_use):
            cells = []
            for b in buckets:
                used, cap = p.quota_use[day].get(b, 0), p.quota_caps[b]
                cls = " class='full'" if cap and used >= cap else ""
                cells.append(f"<td{cls}>{used} / {cap}</td>")
            out.append(f"<tr><td>{day}</td>{''.join(cells)}</tr>")
        out.append("</table><h3>Posts</h3><div class='grid'>")
        for post in p.posts:
            out.append(
                f"<div class='card'><img alt='' src='{_img_src(post)}'>"
                f"<div class='when'>{e(post.when_local)}</div><p>{e(post.caption)}</p></div>"
            )
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    path: Path, title: str, personas: Sequence[PersonaReport], *, notes: Sequence[str] = ()
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(title, personas, notes=notes), encoding="utf-8")
    return path
