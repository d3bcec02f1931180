"""Charts of the leaderboard site as hand-written SVG: deterministic text, no plotting library.

Two kinds: a **Pareto chart** (test top-1 against a cost: MACs, parameters or measured latency),
one marker per ranked row with its 95% confidence interval as an error bar, the frontier of rows
(and the dense base model) that nothing beats on both axes drawn as a staircase, the dense base
model as a star, and the
published references as open diamonds marked "published, not ranked"; and a **line chart** of
per-epoch curves (accuracy, learning rate, mean JSV). Every string from a submission is escaped;
coordinates are rounded to 0.1 px, so the same data gives the same bytes. Markers carry
``data-label`` so the page's script can dim what a filter hides, and a ``<title>`` tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "ChartPoint",
    "Series",
    "frontier",
    "label_colors",
    "line_chart",
    "nice_ticks",
    "pareto_chart",
]

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
"""Colours by label, in order of first appearance (matplotlib's tab10)."""

_W, _H = 560, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 16, 30, 44


@dataclass(frozen=True)
class ChartPoint:
    """One marker of a Pareto chart.

    Attributes:
        x: The cost (MACs, parameters, milliseconds).
        y: Mean test top-1, percent.
        error: Half-width of the 95% CI (percentage points), or None (no bar).
        label: The legend entry (method label); equal labels share a colour.
        tooltip: The marker's tooltip text.
        kind: ``"row"`` (ranked, part of the frontier), ``"dense"`` or ``"published"``.
        href: A link for the marker (a table row), or "".
    """

    x: float
    y: float
    error: float | None
    label: str
    tooltip: str
    kind: str = "row"
    href: str = ""


@dataclass(frozen=True)
class Series:
    """One line of a line chart: ``(x, y)`` points, drawn as steps when ``step``."""

    label: str
    points: Sequence[tuple[float, float]]
    step: bool = False
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering
    [``low``, ``high``]."""
    if high <= low:
        pad = 1.0 if abs(low) >= 1 else (abs(low) * 0.5 or 1.0)
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [round(math.floor(low / step) * step, 10)]
    while ticks[-1] < high - step * 1e-9 or len(ticks) < 2:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def frontier(points: Sequence[ChartPoint]) -> list[ChartPoint]:
    """The points no other point beats on both axes (lower cost and higher top-1), by cost."""
    best = -math.inf
    kept = []
    for point in sorted(points, key=lambda p: (p.x, -p.y)):
        if point.y > best:
            kept.append(point)
            best = point.y
    return kept


class _Frame:
    """Maps data to pixels inside the plot area; ``log_y`` for a logarithmic y axis."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], log_y: bool = False) -> None:
        self.log_y = log_y
        ys = [math.log10(y) for y in ys] if log_y else list(ys)
        self.xticks = nice_ticks(min(xs), max(xs))
        self.yticks = (
            list(range(math.floor(min(ys)), math.ceil(max(ys)) + 1))
            if log_y
            else nice_ticks(min(ys), max(ys))
        )
        self.x0, self.x1 = self.xticks[0], self.xticks[-1]
        self.y0, self.y1 = self.yticks[0], self.yticks[-1]
        if self.y1 == self.y0:
            self.y1 = self.y0 + 1

    def px(self, x: float) -> float:
        return _LEFT + (x - self.x0) / (self.x1 - self.x0 or 1) * (_W - _LEFT - _RIGHT)

    def py(self, y: float) -> float:
        value = math.log10(y) if self.log_y else y
        return _H - _BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (_H - _TOP - _BOTTOM)


def _axes(frame: _Frame, title: str, xlabel: str, ylabel: str, fmt_x: Callable) -> list[str]:
    """Title, grid, ticks and axis labels."""
    parts = [
        f'<text class="title" x="{_W / 2:.1f}" y="18" text-anchor="middle">{escape(title)}</text>'
    ]
    for x in frame.xticks:
        px = frame.px(x)
        parts.append(
            f'<line class="grid" x1="{px:.1f}" y1="{_TOP}" x2="{px:.1f}" y2="{_H - _BOTTOM}"/>'
        )
        parts.append(
            f'<text class="tick" x="{px:.1f}" y="{_H - _BOTTOM + 14}" text-anchor="middle">'
            f"{escape(fmt_x(x))}</text>"
        )
    for y in frame.yticks:
        value = 10.0**y if frame.log_y else y
        py = frame.py(value)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{py:.1f}" x2="{_W - _RIGHT}" y2="{py:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">'
            f"{_fmt(value)}</text>"
        )
    parts.append(
        f'<text class="label" x="{(_LEFT + _W - _RIGHT) / 2:.1f}" y="{_H - 8}" '
        f'text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text class="label" transform="translate(14 {(_TOP + _H - _BOTTOM) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(ylabel)}</text>'
    )
    return parts


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _svg(parts: list[str], title: str, legend: list[str]) -> str:
    body = "\n".join(parts)
    items = "".join(legend)
    return (
        f'<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="{escape(title)}">\n{body}\n</svg>'
        f'<figcaption class="legend">{items}</figcaption></figure>'
    )


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per distinct label, in order of first appearance."""
    return _colors(labels)


def _colors(labels: Sequence[str]) -> dict[str, str]:
    ordered = list(dict.fromkeys(labels))
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(ordered)}


def _legend_item(label: str, color: str, kind: str = "row") -> str:
    shape = {"published": "◇", "dense": "★"}.get(kind, "●")
    return (
        f'<span class="key" data-label="{escape(label)}"><span style="color:{color}">{shape}</span> '
        f"{escape(label)}</span>"
    )


def pareto_chart(
    points: Sequence[ChartPoint],
    title: str,
    xlabel: str,
    fmt_x: Callable[[float], str] = _fmt,
    colors: Mapping[str, str] | None = None,
) -> str:
    """Top-1 against a cost, with CI bars, the frontier, the dense star and published diamonds.

    Args:
        points: The markers (at least one).
        title: The chart's title.
        xlabel: The cost axis' label, with its unit.
        fmt_x: How tick values of the cost axis are written (e.g. ``format_macs``).
        colors: Label -> colour, so a method keeps its colour across charts (default: by order
            of appearance, :func:`label_colors`).

    Returns:
        A ``<figure>`` holding the ``<svg>`` and an HTML legend.
    """
    ys = [p.y + (p.error or 0) for p in points] + [p.y - (p.error or 0) for p in points]
    frame = _Frame([0.0, *(p.x for p in points)], ys)
    shown = dict.fromkeys(p.label for p in points if p.kind == "row")
    palette = colors or label_colors(list(shown))
    colors = {label: palette.get(label, "#444") for label in shown}
    parts = _axes(frame, title, xlabel, "test top-1 (%)", fmt_x)
    steps = frontier([p for p in points if p.kind in ("row", "dense")])
    if len(steps) > 1:
        path = " ".join(
            f"{frame.px(b.x):.1f},{frame.py(a.y):.1f} {frame.px(b.x):.1f},{frame.py(b.y):.1f}"
            for a, b in zip(steps, steps[1:], strict=False)
        )
        start = f"{frame.px(steps[0].x):.1f},{frame.py(steps[0].y):.1f}"
        parts.append(f'<polyline class="frontier" points="{start} {path}"/>')
    dodge = _dodge(frame, points)
    for point, dx in zip(points, dodge, strict=True):
        parts.append(_marker(frame, point, colors.get(point.label, "#444"), dx))
    legend = [_legend_item(label, color) for label, color in colors.items()]
    if len(steps) > 1:
        legend.append('<span class="key"><span class="frontier-key">┘</span> frontier</span>')
    for kind in ("dense", "published"):
        if any(p.kind == kind for p in points):
            text = "dense base model" if kind == "dense" else "published, not ranked"
            legend.append(_legend_item(text, "#444", kind))
    return _svg(parts, title, legend)


def _dodge(frame: _Frame, points: Sequence[ChartPoint]) -> list[float]:
    """Pixel offsets that set rows of one cost side by side (8 px apart, centred)."""
    columns: dict[float, list[int]] = {}
    for i, point in enumerate(points):
        if point.kind == "row":
            columns.setdefault(round(frame.px(point.x)), []).append(i)
    offsets = [0.0] * len(points)
    for members in columns.values():
        for j, i in enumerate(members):
            offsets[i] = (j - (len(members) - 1) / 2) * 8.0
    return offsets


def _marker(frame: _Frame, point: ChartPoint, color: str, dx: float = 0.0) -> str:
    x, y = frame.px(point.x) + dx, frame.py(point.y)
    shapes = []
    if point.error:
        top, bottom = frame.py(point.y + point.error), frame.py(point.y - point.error)
        shapes.append(
            f'<line class="bar" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{color}"/>'
        )
    if point.kind == "published":
        shapes.append(
            f'<polygon class="published" points="{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} '
            f'{x:.1f},{y + 6:.1f} {x - 6:.1f},{y:.1f}"/>'
        )
    elif point.kind == "dense":
        shapes.append(
            f'<text class="dense" x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle">★</text>'
        )
    else:
        shapes.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{color}"/>')
    inner = f"<title>{escape(point.tooltip)}</title>" + "".join(shapes)
    if point.href:
        inner = f'<a href="{escape(point.href)}">{inner}</a>'
    return f'<g class="point {point.kind}" data-label="{escape(point.label)}">{inner}</g>'


def line_chart(
    series: Sequence[Series], title: str, xlabel: str, ylabel: str, log_y: bool = False
) -> str:
    """Per-epoch curves, one polyline per series (steps for an LR schedule).

    Args:
        series: The lines (at least one with a point); ``log_y`` needs positive values.
        title: The chart's title.
        xlabel: The x axis' label (e.g. ``"retraining epoch"``).
        ylabel: The y axis' label, with its unit.
        log_y: A logarithmic y axis (e.g. for learning rates and JSVs).

    Returns:
        A ``<figure>`` holding the ``<svg>`` and an HTML legend.
    """
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    frame = _Frame(xs, ys, log_y)
    colors = _colors([s.label for s in series])
    parts = _axes(frame, title, xlabel, ylabel, _fmt)
    for line in series:
        coords = []
        for i, (x, y) in enumerate(line.points):
            if line.step and i:
                coords.append(f"{frame.px(x):.1f},{frame.py(line.points[i - 1][1]):.1f}")
            coords.append(f"{frame.px(x):.1f},{frame.py(y):.1f}")
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        parts.append(
            f'<polyline class="curve" points="{" ".join(coords)}" stroke="{colors[line.label]}"'
            f"{dash}><title>{escape(line.label)}</title></polyline>"
        )
    legend = [_legend_item(label, color) for label, color in colors.items()]
    return _svg(parts, title, legend)
