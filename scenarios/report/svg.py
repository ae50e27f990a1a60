"""A small SVG chart kit: scales, axes with ticks and units, marks, legends, a data table.

Every chart of :mod:`scenarios.report` is a :class:`Chart` rendered to a
:class:`Figure`: plain SVG (no script, no external request) with a title, axes
labelled with their units, a legend, and a text alternative (the SVG's
``<title>``/``<desc>`` and a data table behind the chart).

Marks carry their data for machines: every mark has ``class="mark"``,
``data-kind`` (``point``, ``bar``, ``line``, ``band``, ``fan``, ``rule``,
``tick``), ``data-series`` (its legend entry) and its numbers in data units
(decimals, not pixels): ``data-x``/``data-y`` for a point, bar, tick or rule,
``data-lo``/``data-hi`` for a band, ``data-xs``/``data-ys`` (JSON lists) for a
line and ``data-xs``/``data-los``/``data-his`` for a fan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scenarios.report.figure import Figure, Table, esc

__all__ = ["Chart", "Figure", "Table", "esc", "nice_ticks", "pct", "tick_pct"]

#: Series colours, in order (colour-blind-safe Okabe-Ito order, darkened for print).
PALETTE = (
    "#0b63a6",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#8a6d00",
    "#56b4e9",
    "#6a3d9a",
    "#b22222",
    "#4d4d4d",
    "#e69f00",
)
GREY = "#8c96a0"
INK = "#1d2733"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
WIDTH, HEIGHT = 760, 380
Fmt = Callable[[float], str]


def pct(v: float | None, digits: int = 1) -> str:
    """``0.0525`` -> ``"5.3%"`` (``"n/a"`` for None or NaN)."""
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v * 100:,.{digits}f}%"


def tick_pct(v: float) -> str:
    """An axis tick in percent without needless decimals: ``0.125`` -> ``"12.5%"``."""
    v = 0.0 if abs(v) < 1e-12 else v
    text = f"{v * 100:,.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def num(v: float) -> str:
    """A number for a data attribute: 12 significant digits, compact."""
    return format(float(v), ".12g")


def nums(values: Sequence[float]) -> str:
    """A JSON list of numbers for a data attribute (None for a missing value)."""
    return json.dumps([None if not math.isfinite(v) else float(num(v)) for v in values])


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (about ``count`` of them)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.1
    raw = (hi - lo) / max(count, 1)
    if not math.isfinite(raw) or raw <= 0:  # a span beyond floats (1e308): just the ends
        return [lo, hi]
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    # the slack: lo a multiple of the step up to float noise (0.3 / 0.1 = 2.9999...)
    first = round(math.floor(lo / step + 1e-9) * step, 12)
    if first > lo:  # ... but the first tick never above the data (lo a hair below a multiple)
        first -= step
    out, v = [], first
    while v <= hi + step * 1e-6 and len(out) < 50:
        out.append(round(v, 12))
        v += step
    if out[-1] < hi:
        out.append(round(v, 12))
    return out


@dataclass
class Scale:
    """A linear (or base-10 log) map from data to pixels."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def __call__(self, v: float) -> float:
        f = math.log10 if self.log else float
        lo, hi = f(self.lo), f(self.hi)
        t = 0.5 if hi == lo else (f(v) - lo) / (hi - lo)
        return self.p0 + t * (self.p1 - self.p0)


def _log_ticks(lo: float, hi: float) -> list[float]:
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [10.0**k for k in range(a, b + 1)]
    if len(ticks) <= 3:
        ticks = sorted({m * 10.0**k for k in range(a, b + 1) for m in (1, 2, 5)})
    return ticks


@dataclass
class _Layer:
    kind: str
    label: str | None
    color: str
    data: dict = field(default_factory=dict)


class Chart:
    """A chart being built: add layers, then :meth:`figure`.

    Parameters
    ----------
    kind : str
        Identifier of the chart (``data-chart`` of its figure, e.g. ``"frontier"``).
    title, xlabel, ylabel : str
        Title and axis labels (with their units, e.g. ``"Volatility (%, annualized)"``).
    categories : sequence of str, optional
        Category labels of a bar chart's x axis (a band scale); None: numeric x.
    xfmt, yfmt : callable
        Tick formatters (default percent).
    ylog : bool
        Base-10 log scale for y (positive data only).
    """

    def __init__(
        self,
        kind: str,
        title: str,
        *,
        xlabel: str,
        ylabel: str,
        categories: Sequence[str] | None = None,
        xfmt: Fmt = tick_pct,
        yfmt: Fmt = tick_pct,
        ylog: bool = False,
        subtitle: str | None = None,
        width: int = WIDTH,
        height: int = HEIGHT,
        yzero: bool = True,
    ) -> None:
        self.kind, self.title, self.subtitle = kind, title, subtitle
        self.xlabel, self.ylabel = xlabel, ylabel
        self.categories = None if categories is None else [str(c) for c in categories]
        self.xfmt, self.yfmt, self.ylog, self.yzero = xfmt, yfmt, ylog, yzero
        self.width, self.height = width, height
        self.layers: list[_Layer] = []
        self._color = 0

    def color(self) -> str:
        """The next colour of the palette."""
        c = PALETTE[self._color % len(PALETTE)]
        self._color += 1
        return c

    def _add(self, kind: str, label: str | None, color: str | None, **data) -> None:
        self.layers.append(_Layer(kind, label, color or self.color(), data))

    # ------------------------------------------------------------------ layers
    def line(self, xs, ys, label, *, color=None, dash=False, width=2.0) -> None:
        """A polyline through ``(xs, ys)`` (data units)."""
        self._add(
            "line",
            label,
            color,
            xs=list(map(float, xs)),
            ys=list(map(float, ys)),
            dash=dash,
            width=width,
        )

    def points(self, xs, ys, label, *, color=None, shape="circle", size=6.0, names=None) -> None:
        """Markers at ``(xs, ys)``; ``names`` labels each one on the chart."""
        self._add(
            "point",
            label,
            color,
            xs=list(map(float, xs)),
            ys=list(map(float, ys)),
            shape=shape,
            size=size,
            names=names,
        )

    def bars(self, values: Sequence[float], label: str, *, color=None) -> None:
        """One bar per category (several ``bars`` layers are grouped side by side)."""
        self._add("bar", label, color, ys=[float(v) for v in values])

    def ranges(self, lo: Sequence[float], hi: Sequence[float], label: str, *, color=None) -> None:
        """A shaded range per category (a band behind its group of bars); NaN: none."""
        self._add("band", label, color, lo=list(map(float, lo)), hi=list(map(float, hi)))

    def ticks(self, values: Sequence[float], label: str, *, color=None) -> None:
        """A horizontal tick across each category's group (e.g. the policy weight)."""
        self._add("tick", label, color, ys=[float(v) for v in values])

    def fan(self, xs, lo, hi, label, *, color=None, opacity=0.25) -> None:
        """A filled band between ``lo`` and ``hi`` along ``xs``."""
        self._add(
            "fan",
            label,
            color,
            xs=list(map(float, xs)),
            lo=list(map(float, lo)),
            hi=list(map(float, hi)),
            opacity=opacity,
        )

    def hline(self, y: float, label: str, *, color=None) -> None:
        """A dashed horizontal rule at ``y`` across the plot."""
        self._add("rule", label, color or INK, y=float(y))

    # ------------------------------------------------------------------ render
    def _extent(self) -> tuple[tuple[float, float], tuple[float, float]]:
        xs, ys = [], []
        for layer in self.layers:
            d = layer.data
            xs += d.get("xs", [])
            for key in ("ys", "lo", "hi"):
                ys += d.get(key, [])
            if "y" in d:
                ys.append(d["y"])
        xs = [v for v in xs if math.isfinite(v)] or [0.0, 1.0]
        ys = [v for v in ys if math.isfinite(v)] or [0.0, 1.0]
        if self.ylog:
            ys = [v for v in ys if v > 0] or [1.0, 10.0]
        elif self.yzero:
            ys.append(0.0)
        return (min(xs), max(xs)), (min(ys), max(ys))

    def figure(self, table: Table, desc: str = "") -> Figure:
        """Render the chart with its data table (the text alternative)."""
        W, H = self.width, self.height
        legend_items = [
            (la.label, la.color, "rule" if la.data.get("dash") else la.kind)
            for la in self.layers
            if la.label
        ]
        seen: set[str] = set()
        legend_items = [i for i in legend_items if not (i[0] in seen or seen.add(i[0]))]
        self._opacity = {
            la.label: la.data["opacity"] for la in self.layers if la.kind == "fan" and la.label
        }
        rows = self._legend_rows(legend_items)
        top = 48 if self.subtitle else 34
        bottom = 56 + (30 if self.categories and self._rotate() else 0) + 18 * len(rows)
        (x0, x1), (y0, y1) = self._extent()
        if self.ylog:
            yt = _log_ticks(y0, y1)
            y0, y1 = min(yt[0], y0), max(yt[-1], y1)
            yt = [t for t in yt if y0 <= t <= y1]
        else:
            pad = (y1 - y0) * 0.06 or abs(y1) * 0.1 or 0.01
            lo = y0 - pad if (y0 < 0 or not self.yzero) and y0 != 0 else y0
            hi = y1 + pad if y1 != 0 or y0 >= 0 else y1
            yt = nice_ticks(lo, hi)
            y0, y1 = yt[0], yt[-1]
        left = 34 + max(int(6.6 * max(len(self.yfmt(t)) for t in yt)), 30)
        right = 18
        ys = Scale(y0, y1, H - bottom, top, log=self.ylog)
        parts: list[str] = []
        # y grid and ticks
        for t in yt:
            py = ys(t)
            parts.append(
                f'<line x1="{left}" x2="{W - right}" y1="{py:.1f}" y2="{py:.1f}" '
                f'stroke="#e3e7eb" stroke-width="1"/>'
                f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11" '
                f'class="tick-label">{esc(self.yfmt(t))}</text>'
            )
        if self.categories is not None:
            xs, parts_x = self._band_axis(left, W - right, H - bottom)
        else:
            if x1 <= x0:
                x0, x1 = x0 - 0.01, x1 + 0.01
            xt = nice_ticks(x0, x1, 6)
            xs = Scale(xt[0], xt[-1], left, W - right)
            parts_x = []
            for t in xt:
                px = xs(t)
                parts_x.append(
                    f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{H - bottom}" y2="{H - bottom + 4}" '
                    f'stroke="{INK}"/><text x="{px:.1f}" y="{H - bottom + 16}" '
                    f'text-anchor="middle" font-size="11" class="tick-label">'
                    f"{esc(self.xfmt(t))}</text>"
                )
        parts += parts_x
        if not self.ylog and y0 < 0 < y1:
            parts.append(
                f'<line x1="{left}" x2="{W - right}" y1="{ys(0):.1f}" y2="{ys(0):.1f}" '
                f'stroke="{INK}" stroke-width="1"/>'
            )
        marks = 0
        for layer in sorted(self.layers, key=lambda la: _ORDER[la.kind]):
            svg, n = self._render(layer, xs, ys, left, W - right)
            parts.append(svg)
            marks += n
        # axes frame and labels
        parts.append(
            f'<line x1="{left}" x2="{left}" y1="{top}" y2="{H - bottom}" stroke="{INK}"/>'
            f'<line x1="{left}" x2="{W - right}" y1="{H - bottom}" y2="{H - bottom}" '
            f'stroke="{INK}"/>'
        )
        xlab_y = H - bottom + (66 if self.categories and self._rotate() else 36)
        parts.append(
            f'<text x="{(left + W - right) / 2:.1f}" y="{xlab_y}" text-anchor="middle" '
            f'font-size="12" class="axis-label">{esc(self.xlabel)}</text>'
            f'<text transform="translate(14 {(top + H - bottom) / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle" font-size="12" class="axis-label">{esc(self.ylabel)}</text>'
            f'<text x="{left}" y="20" font-size="15" font-weight="600" class="chart-title">'
            f"{esc(self.title)}</text>"
        )
        if self.subtitle:
            parts.append(
                f'<text x="{left}" y="38" font-size="12" fill="#4a5563">{esc(self.subtitle)}</text>'
            )
        parts.append(self._legend(rows, H - 18 * len(rows) - 4, left))
        desc = desc or f"{self.title}: {self.ylabel} against {self.xlabel}."
        tid = f"t-{self.kind}"
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
            f'height="{H}" role="img" aria-labelledby="{tid}" class="chart-svg" '
            f'data-chart="{esc(self.kind)}" font-family="{esc(FONT)}" fill="{INK}">'
            f'<title id="{tid}">{esc(self.title)}</title><desc>{esc(desc)}</desc>'
            f'<rect width="{W}" height="{H}" fill="#ffffff"/>' + "".join(parts) + "</svg>"
        )
        return Figure(self.kind, self.title, svg, table, desc, marks)

    def _rotate(self) -> bool:
        n = len(self.categories or ())
        longest = max((len(c) for c in self.categories or ()), default=0)
        return n and longest * 6.5 > (self.width - 90) / n

    def _band_axis(self, x0: float, x1: float, base: float):
        cats = self.categories or []
        step = (x1 - x0) / max(len(cats), 1)
        parts = []
        rotate = self._rotate()
        for i, c in enumerate(cats):
            cx = x0 + step * (i + 0.5)
            if rotate:
                parts.append(
                    f'<text transform="translate({cx:.1f} {base + 12}) rotate(-35)" '
                    f'text-anchor="end" font-size="11" class="tick-label">{esc(c)}</text>'
                )
            else:
                parts.append(
                    f'<text x="{cx:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" '
                    f'class="tick-label">{esc(c)}</text>'
                )
        return (x0, step), parts

    def _legend_rows(self, items):
        rows, row, width = [], [], 0.0
        limit = self.width - 90
        for label, color, kind in items:
            w = 36 + 7.0 * len(label)
            if row and width + w > limit:
                rows.append(row)
                row, width = [], 0.0
            row.append((label, color, kind, w))
            width += w
        if row:
            rows.append(row)
        return rows

    def _legend(self, rows, y, left) -> str:
        out = ['<g class="legend">']
        for r, row in enumerate(rows):
            x = left
            yy = y + 18 * r
            for label, color, kind, w in row:
                if kind in ("line", "rule", "tick"):
                    dash = ' stroke-dasharray="5 3"' if kind == "rule" else ""
                    sw = 2
                    sym = (
                        f'<line x1="{x}" x2="{x + 18}" y1="{yy}" y2="{yy}" stroke="{color}" '
                        f'stroke-width="{sw}"{dash}/>'
                    )
                elif kind == "point":
                    sym = f'<circle cx="{x + 9}" cy="{yy}" r="5" fill="{color}"/>'
                else:
                    shade = self._opacity.get(label, 0.35)
                    op = f' fill-opacity="{shade}"' if kind in ("band", "fan") else ""
                    sym = (
                        f'<rect x="{x + 2}" y="{yy - 6}" width="14" height="12" fill="{color}"'
                        f"{op}/>"
                    )
                out.append(
                    f'<g class="legend-item" data-series="{esc(label)}">{sym}'
                    f'<text x="{x + 24}" y="{yy + 4}" font-size="12">{esc(label)}</text></g>'
                )
                x += w
        out.append("</g>")
        return "".join(out)

    def _render(self, layer: _Layer, xs, ys, xl: float, xr: float) -> tuple[str, int]:
        d, c = layer.data, layer.color
        series = esc(layer.label or "")
        if layer.kind == "rule":
            y = ys(d["y"])
            return (
                f'<line class="mark" data-kind="rule" data-series="{series}" '
                f'data-y="{num(d["y"])}" x1="{xl}" x2="{xr}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{c}" stroke-width="1.5" stroke-dasharray="6 4"/>',
                1,
            )
        if self.categories is not None:
            return self._render_band(layer, xs, ys)
        if layer.kind == "line":
            pts = [
                f"{xs(x):.1f},{ys(y):.1f}"
                for x, y in zip(d["xs"], d["ys"], strict=True)
                if math.isfinite(x) and math.isfinite(y)
            ]
            dash = ' stroke-dasharray="6 4"' if d["dash"] else ""
            return (
                f'<polyline class="mark" data-kind="line" data-series="{series}" '
                f'data-n="{len(d["xs"])}" data-xs="{esc(nums(d["xs"]))}" '
                f'data-ys="{esc(nums(d["ys"]))}" points="{" ".join(pts)}" fill="none" '
                f'stroke="{c}" stroke-width="{d["width"]}" stroke-linejoin="round"{dash}/>',
                1,
            )
        if layer.kind == "fan":
            upper = [f"{xs(x):.1f},{ys(y):.1f}" for x, y in zip(d["xs"], d["hi"], strict=True)]
            lower = [f"{xs(x):.1f},{ys(y):.1f}" for x, y in zip(d["xs"], d["lo"], strict=True)]
            return (
                f'<polygon class="mark" data-kind="fan" data-series="{series}" '
                f'data-xs="{esc(nums(d["xs"]))}" data-los="{esc(nums(d["lo"]))}" '
                f'data-his="{esc(nums(d["hi"]))}" points="{" ".join(upper + lower[::-1])}" '
                f'fill="{c}" fill-opacity="{d["opacity"]}" stroke="none"/>',
                1,
            )
        if layer.kind == "point":
            out = []
            for i, (x, y) in enumerate(zip(d["xs"], d["ys"], strict=True)):
                px, py = xs(x), ys(y)
                name = d["names"][i] if d.get("names") else None
                attrs = (
                    f'class="mark" data-kind="point" data-series="{series}" '
                    f'data-x="{num(x)}" data-y="{num(y)}"'
                    + (f' data-name="{esc(name)}"' if name else "")
                )
                out.append(_marker(d["shape"], px, py, d["size"], c, attrs))
                if name:
                    out.append(
                        f'<text x="{px + 8:.1f}" y="{py - 7:.1f}" font-size="11" '
                        f'class="point-label">{esc(name)}</text>'
                    )
            return "".join(out), len(d["xs"])
        raise ValueError(f"layer {layer.kind} needs a category axis")

    def _render_band(self, layer: _Layer, axis, ys) -> tuple[str, int]:
        x0, step = axis
        d, c, series = layer.data, layer.color, esc(layer.label or "")
        bar_layers = [la for la in self.layers if la.kind == "bar"]
        nb = max(len(bar_layers), 1)
        group = min(step * 0.78, 90.0 * nb)
        out, n = [], 0
        cats = self.categories or []
        if layer.kind == "bar":
            k = bar_layers.index(layer)
            bw = group / nb
            for i, (cat, v) in enumerate(zip(cats, d["ys"], strict=True)):
                if not math.isfinite(v):
                    continue
                bx = x0 + step * i + (step - group) / 2 + k * bw
                y_a, y_b = ys(max(v, 0.0)), ys(min(v, 0.0))
                out.append(
                    f'<rect class="mark" data-kind="bar" data-series="{series}" '
                    f'data-x="{esc(cat)}" data-y="{num(v)}" x="{bx + 1:.1f}" y="{y_a:.1f}" '
                    f'width="{max(bw - 2, 1):.1f}" height="{max(y_b - y_a, 0.5):.1f}" '
                    f'fill="{c}"><title>{esc(cat)}, {esc(layer.label)}: '
                    f"{esc(self.yfmt(v))}</title></rect>"
                )
                n += 1
        elif layer.kind == "band":
            for i, (cat, lo, hi) in enumerate(zip(cats, d["lo"], d["hi"], strict=True)):
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    continue
                bx = x0 + step * i + (step - group) / 2 - 3
                out.append(
                    f'<rect class="mark" data-kind="band" data-series="{series}" '
                    f'data-x="{esc(cat)}" data-lo="{num(lo)}" data-hi="{num(hi)}" '
                    f'x="{bx:.1f}" y="{ys(hi):.1f}" width="{group + 6:.1f}" '
                    f'height="{max(ys(lo) - ys(hi), 1):.1f}" fill="{c}" fill-opacity="0.22" '
                    f'stroke="{c}" stroke-opacity="0.6" stroke-dasharray="3 2"/>'
                )
                n += 1
        elif layer.kind == "tick":
            for i, (cat, v) in enumerate(zip(cats, d["ys"], strict=True)):
                if not math.isfinite(v):
                    continue
                bx = x0 + step * i + (step - group) / 2 - 4
                y = ys(v)
                out.append(
                    f'<line class="mark" data-kind="tick" data-series="{series}" '
                    f'data-x="{esc(cat)}" data-y="{num(v)}" x1="{bx:.1f}" '
                    f'x2="{bx + group + 8:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{c}" '
                    f'stroke-width="2.5"/>'
                )
                n += 1
        else:
            raise ValueError(f"layer {layer.kind} needs a numeric x axis")
        return "".join(out), n


_ORDER = {"band": 0, "fan": 1, "bar": 2, "line": 3, "rule": 4, "tick": 5, "point": 6}


def _marker(shape: str, x: float, y: float, size: float, color: str, attrs: str) -> str:
    s = size
    if shape == "diamond":
        pts = f"{x:.1f},{y - s:.1f} {x + s:.1f},{y:.1f} {x:.1f},{y + s:.1f} {x - s:.1f},{y:.1f}"
        return f'<polygon {attrs} points="{pts}" fill="{color}" stroke="#fff" stroke-width="1"/>'
    if shape == "square":
        return (
            f'<rect {attrs} x="{x - s * 0.8:.1f}" y="{y - s * 0.8:.1f}" width="{s * 1.6:.1f}" '
            f'height="{s * 1.6:.1f}" fill="{color}" stroke="#fff" stroke-width="1"/>'
        )
    if shape == "triangle":
        pts = f"{x:.1f},{y - s:.1f} {x + s:.1f},{y + s * 0.8:.1f} {x - s:.1f},{y + s * 0.8:.1f}"
        return f'<polygon {attrs} points="{pts}" fill="{color}" stroke="#fff" stroke-width="1"/>'
    if shape == "dot":
        return f'<circle {attrs} cx="{x:.1f}" cy="{y:.1f}" r="{s * 0.45:.1f}" fill="{color}"/>'
    return (
        f'<circle {attrs} cx="{x:.1f}" cy="{y:.1f}" r="{s * 0.8:.1f}" fill="{color}" '
        f'stroke="#fff" stroke-width="1"/>'
    )
