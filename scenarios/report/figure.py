"""What a chart becomes: a :class:`Figure` (SVG text and its :class:`Table`).

A figure shows itself in Jupyter (``_repr_svg_`` / ``_repr_html_``) and
:meth:`Figure.save` writes ``.svg`` or ``.html``; the report puts
:meth:`Figure.to_html` on its page.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from optimizer.errors import InputError


def esc(text: object) -> str:
    """``text`` escaped for HTML/SVG text and attributes."""
    return html.escape(str(text), quote=True)


_NUMERIC = re.compile(r"^[-+]?[\d.,]+(e[-+]?\d+)?%?( [A-Z]{3})?$|^n/a$")


def _cell(value: object) -> str:
    """A table cell: numbers right-aligned (the CSS default), text left-aligned."""
    text = str(value)
    cls = "" if _NUMERIC.match(text) or not text else ' class="text"'
    return f"<td{cls}>{esc(text)}</td>"


@dataclass
class Table:
    """The data behind a chart: column headers and rows of display text."""

    columns: list[str]
    rows: list[list[str]]
    note: str | None = None

    def to_html(self, cls: str = "data") -> str:
        text = [
            i > 0
            and bool(self.rows)
            and all(_cell(r[i]).startswith("<td class") for r in self.rows)
            for i in range(len(self.columns))
        ]
        left = ' class="text"'
        head = "".join(
            f'<th scope="col"{left if t else ""}>{esc(c)}</th>'
            for c, t in zip(self.columns, text, strict=True)
        )
        body = "".join(
            "<tr>"
            + "".join(
                (f'<th scope="row">{esc(v)}</th>' if i == 0 else _cell(v)) for i, v in enumerate(r)
            )
            + "</tr>"
            for r in self.rows
        )
        note = f'<p class="note">{esc(self.note)}</p>' if self.note else ""
        table = f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        return f'<table class="{cls}">{table}</table>{note}'


@dataclass
class Figure:
    """A finished chart: SVG text, title, its data table; shows itself in a notebook.

    ``_repr_svg_`` / ``_repr_html_`` display it in Jupyter; :meth:`save` writes
    ``.svg`` (the chart) or ``.html`` (chart and data table, one offline page).
    """

    kind: str
    title: str
    svg: str
    table: Table
    desc: str = ""
    marks: int = 0

    def to_svg(self) -> str:
        """The chart as a standalone SVG document."""
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + self.svg

    def to_html(self, *, open_table: bool = False) -> str:
        """``<figure>`` with the chart, its caption and the data table behind it."""
        opened = " open" if open_table else ""
        return (
            f'<figure class="chart" data-chart="{esc(self.kind)}" data-marks="{self.marks}">'
            f"{self.svg}<figcaption>{esc(self.desc)}</figcaption>"
            f'<details class="table"{opened}><summary>Data table: {esc(self.title)}</summary>'
            f"{self.table.to_html()}</details></figure>"
        )

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        from scenarios.report.html import CSS

        return f"<div class='trimtab-report'><style>{CSS}</style>{self.to_html()}</div>"

    def save(self, path: str | Path) -> Path:
        """Write the figure to ``path``: ``.svg`` (chart) or ``.html`` (chart and table).

        Raises
        ------
        InputError
            Another suffix, or the file cannot be written (naming the path).
        """
        from scenarios.report.html import page

        p = Path(path)
        if p.suffix.lower() == ".svg":
            text = self.to_svg()
        elif p.suffix.lower() in (".html", ".htm"):
            text = page(self.title, self.to_html(open_table=True))
        else:
            raise InputError(
                f"{p}: cannot save a figure as {p.suffix or 'a file without a suffix'}: "
                "give a path ending in .svg or .html"
            )
        try:
            p.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{p}: cannot write the figure: {exc.strerror or exc}") from None
        return p
