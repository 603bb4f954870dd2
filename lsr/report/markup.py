"""HTML building blocks for the run report: escaped text, tables, embedded images, sections, the page.

Every string that reaches the page goes through :func:`esc` unless it is already :class:`Markup` (built here
from escaped parts), so a document, a summary or a path holding ``<`` or ``&`` can never break the page or
inject markup. The page is self-contained: inline CSS, images as ``data:`` URIs, no scripts, nothing fetched.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Markup(str):
    """A string that is already safe HTML; :func:`esc` passes it through unchanged."""

    def __add__(self, other: object) -> Markup:
        # ``str + str`` would drop the mark and get the markup escaped later; escape the other side instead.
        return Markup(str.__add__(self, esc(other)))


def esc(value: object) -> Markup:
    """``value`` as HTML text: markup as is, ``None`` as a dash, anything else escaped (quotes included)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("-" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "\n") -> Markup:
    return Markup(sep.join(esc(p) for p in parts))


def tag(name: str, content: object = "", **attrs: object) -> Markup:
    """``<name attrs>content</name>``; ``class_`` stands for ``class``; attribute values are escaped."""
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Markup(f"<{name}{rendered}>{esc(content)}</{name}>")


def paragraph(*parts: object, class_: str | None = None) -> Markup:
    return tag("p", join(parts, " "), class_=class_)


def missing(message: object) -> Markup:
    """The note a section shows instead of its content when a stage's files are absent or unreadable."""
    return tag("p", join([tag("strong", "Not available: "), message], ""), class_="missing")


def table(headers: Sequence[object], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> Markup:
    """A table; the columns whose index is in ``numeric`` are right-aligned."""

    def cells(values: Sequence[object], cell: str) -> Markup:
        return join((tag(cell, v, class_="num" if i in numeric else None) for i, v in enumerate(values)), "")

    head = tag("thead", tag("tr", cells(headers, "th")))
    body = tag("tbody", join(tag("tr", cells(row, "td")) for row in rows))
    return tag("table", join([head, body]))


def key_values(rows: Iterable[Sequence[object]]) -> Markup:
    """A two-column table of labels and values, without a header row."""
    body = join(tag("tr", join([tag("th", label), tag("td", value)], "")) for label, value in rows)
    return tag("table", tag("tbody", body), class_="kv")


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes; refuses anything else so the page never embeds junk."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG image")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str) -> Markup:
    img = Markup(f'<img src="{png_data_uri(png)}" alt="{esc(alt)}">')
    return tag("figure", join([img, tag("figcaption", alt)]))


@dataclass(frozen=True)
class Section:
    """One ``<section>`` of the page; ``id`` is its anchor (linked from the page's table of contents)."""

    id: str
    title: str
    body: Markup

    def render(self) -> Markup:
        return tag("section", join([tag("h2", self.title), self.body]), id=self.id)


STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1200px; margin: 0 auto; padding: 0 24px 48px; background: #fff; }
header { border-bottom: 2px solid #e3e3e8; padding: 18px 0 10px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; color: #555; }
nav { margin: 10px 0 0; } nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; }
h2 { margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #e3e3e8; font-size: 20px; }
h3 { margin: 22px 0 8px; font-size: 16px; }
code, .mono { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid #dcdce2; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f7; } table.kv th { font-weight: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 8px 0 16px; } figure img { max-width: 100%; border: 1px solid #e3e3e8; }
figcaption { color: #666; font-size: 13px; }
.missing { background: #fff6e0; border-left: 4px solid #e0a800; padding: 8px 12px; }
.note { color: #555; font-size: 13px; }
.doc { border: 1px solid #e3e3e8; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
.doc h3 { margin: 2px 0 6px; }
.doc details { margin: 4px 0 10px; } .doc summary { cursor: pointer; color: #333; }
.doc .source { white-space: pre-wrap; font-size: 13px; color: #333; max-height: 320px; overflow: auto; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(230px, 1fr)); gap: 10px; }
.card { background: #f8f8fa; border-radius: 6px; padding: 8px 10px; }
.card h4 { margin: 0 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #444; }
.card p { margin: 0 0 6px; white-space: pre-wrap; } .card .scores { color: #666; font-size: 12px; }
.card.wide { grid-column: 1 / -1; } .card table { margin: 0 0 6px; font-size: 13px; background: #fff; }
"""


def page(title: str, header: Markup, sections: Sequence[Section]) -> str:
    """The whole document: ``<head>`` with inline CSS, the header, a table of contents and every section."""
    nav = tag("nav", join((tag("a", s.title, href=f"#{s.id}") for s in sections), ""))
    body = join([tag("header", join([header, nav])), *(s.render() for s in sections)])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
