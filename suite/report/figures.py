"""Figures and the trainability table of Wang et al. (arXiv 2301.05219), from logged numbers.

Every plot is drawn on its own ``matplotlib.figure.Figure`` (no pyplot, so no global state) and
written twice, as ``<out_stem>.png`` and ``<out_stem>.pdf``; the PDF carries no creation date,
so the same numbers give the same file. Accuracies are top-1 in percent, sparsity a fraction
in [0, 1] (plotted in percent), JSVs dimensionless. Epochs are 0-based in the retraining phase;
epoch -1 means "right after pruning, before retraining".

Inputs are plain data (lists of points), so figures can be drawn from submissions, logs or
the paper's published numbers alike.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import OutputError, PruningSuiteError

__all__ = [
    "FigureError",
    "accuracy_vs_epoch_figure",
    "accuracy_vs_sparsity_figure",
    "jsv_vs_epoch_figure",
    "plot_accuracy_vs_epoch",
    "plot_accuracy_vs_sparsity",
    "plot_jsv_vs_epoch",
    "ta_table",
]

Run = Sequence[tuple[int, float]]
"""One run's curve: ``(epoch, value)`` points."""

_SIZE = (6.4, 4.0)
_STAGE_SHADES = ("0.93", "0.85")
_MIN_SPAN = 10.0
"""Narrowest x range of an accuracy-vs-sparsity plot, percentage points of sparsity."""


class FigureError(PruningSuiteError, ValueError):
    """A figure or table got nothing to draw, or malformed points."""


def plot_accuracy_vs_epoch(
    arms: Mapping[str, Sequence[Run]],
    stages: Mapping[str, Sequence[tuple[int, float]]] | None,
    out_stem: Path | str,
    reference: float | None = None,
    xlabel: str = "retraining epoch",
) -> list[Path]:
    """Test top-1 over retraining epochs, one line per arm (e.g. per retraining LR), written as
    PNG and PDF; the figure is :func:`accuracy_vs_epoch_figure`.

    Args:
        arms, stages, reference, xlabel: As :func:`accuracy_vs_epoch_figure`.
        out_stem: Output path without suffix; its folder is created.

    Returns:
        The written ``.png`` and ``.pdf`` paths.

    Raises:
        FigureError: As :func:`accuracy_vs_epoch_figure`.
        OutputError: The files cannot be written.
    """
    return _save(accuracy_vs_epoch_figure(arms, stages, reference, xlabel), out_stem)


def accuracy_vs_epoch_figure(
    arms: Mapping[str, Sequence[Run]],
    stages: Mapping[str, Sequence[tuple[int, float]]] | None,
    reference: float | None = None,
    xlabel: str = "retraining epoch",
) -> Any:
    """Test top-1 over retraining epochs: one panel per LR schedule, its LR stages shaded.

    Arms that share an LR schedule share a panel (titled with the schedule, stages shaded
    alternately and labelled with their LR); panels share the y axis, and an arm keeps its
    colour in every panel. Each arm's line is the mean over its runs at every epoch, with a band
    from the smallest to the largest run (runs need not log the same epochs; each epoch averages
    the runs that have it). Arms without a schedule share one unshaded panel.

    Args:
        arms: Arm label (e.g. ``"LR 0.01"``) -> runs, each a list of ``(epoch, test_top1)``
            points, top-1 in percent.
        stages: Arm label -> that arm's LR schedule ``[(start_epoch, lr), ...]`` (e.g.
            ``TrainRecipe.stages``); ``None`` or empty draws no stages.
        reference: A top-1 (percent) drawn as a dotted line in every panel, e.g. the dense base
            model's; ``None`` draws none.
        xlabel: The x axis label (e.g. ``"training epoch"`` for runs trained from scratch).

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        FigureError: ``arms`` is empty, an arm has no points, or ``stages`` names an unknown arm.
    """
    _check_arms(arms, "plot_accuracy_vs_epoch")
    stages = dict(stages or {})
    unknown = sorted(set(stages) - set(arms))
    if unknown:
        raise FigureError(
            f"plot_accuracy_vs_epoch: stages given for unknown arms {unknown}",
            f"key stages by the arm labels: {sorted(arms)}",
        )
    panels: dict[tuple[tuple[int, float], ...], list[str]] = {}
    for label in arms:
        panels.setdefault(tuple(stages.get(label) or ()), []).append(label)
    colors = {label: f"C{i}" for i, label in enumerate(arms)}
    figure, all_axes = _new_figure(len(panels))
    for axes, (schedule, labels) in zip(all_axes, panels.items(), strict=True):
        panel = {label: arms[label] for label in labels}
        _draw_arms(axes, panel, colors)
        if schedule:
            _shade_stages(axes, schedule, _last_epoch(panel))
            axes.set_title(
                "LR schedule " + ",".join(f"{start}:{lr:g}" for start, lr in schedule), fontsize=9
            )
        if reference is not None:
            axes.axhline(
                reference, color="0.3", linestyle=":", label=f"dense base model {reference:.2f}"
            )
        axes.set(xlabel=xlabel)
        axes.legend(loc="lower right", fontsize=8)
    all_axes[0].set(ylabel="test top-1 (%)")
    return figure


def plot_jsv_vs_epoch(
    arms: Mapping[str, Sequence[Run]], out_stem: Path | str, reference: float | None = None
) -> list[Path]:
    """Mean JSV over retraining epochs, written as PNG and PDF; the figure is
    :func:`jsv_vs_epoch_figure`.

    Args:
        arms, reference: As :func:`jsv_vs_epoch_figure`.
        out_stem: Output path without suffix; its folder is created.

    Returns:
        The written ``.png`` and ``.pdf`` paths.

    Raises:
        FigureError: As :func:`jsv_vs_epoch_figure`.
        OutputError: The files cannot be written.
    """
    return _save(jsv_vs_epoch_figure(arms, reference), out_stem)


def jsv_vs_epoch_figure(arms: Mapping[str, Sequence[Run]], reference: float | None = None) -> Any:
    """Mean JSV over retraining epochs, one line per arm; epoch -1 is "right after pruning".

    Same input form and bands as :func:`accuracy_vs_epoch_figure`, with mean-JSV values
    (dimensionless, :attr:`pruning_suite.engine.trainability.JSVStats.mean`). A point at epoch -1 is
    the measurement right after pruning, drawn as a dot of the arm's colour (and joined to
    the line), as the axis label says. The y axis is logarithmic when every value is positive,
    so a collapse after pruning (the paper's mean JSV falls by orders of magnitude) stays
    visible beside JSVs near 1.

    Args:
        arms: Arm label -> runs, each a list of ``(epoch, mean JSV)`` points.
        reference: A mean JSV drawn as a dotted line, e.g. the dense base model's; ``None``
            draws none.

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        FigureError: ``arms`` is empty or an arm has no points.
    """
    _check_arms(arms, "plot_jsv_vs_epoch")
    figure, (axes,) = _new_figure()
    colors = _draw_arms(axes, arms)
    xlabel = "retraining epoch"
    for label, runs in arms.items():
        pruned = [value for run in runs for epoch, value in run if epoch == -1]
        if pruned:
            axes.plot([-1] * len(pruned), pruned, "o", color=colors[label], markersize=4)
            xlabel = "retraining epoch (-1: right after pruning, dots)"
    if reference is not None:
        axes.axhline(
            reference, color="0.3", linestyle=":", label=f"dense base model {reference:.3g}"
        )
    values = [value for runs in arms.values() for run in runs for _, value in run]
    if min(values) > 0 and (reference is None or reference > 0):
        axes.set_yscale("log")
    axes.set(xlabel=xlabel, ylabel="mean JSV")
    axes.legend(loc="best", fontsize=8)
    return figure


def plot_accuracy_vs_sparsity(
    points: Mapping[str, Sequence[tuple[float, float, float | None]]],
    out_stem: Path | str,
    title: str | None = None,
    dense: float | None = None,
    hollow: Iterable[str] = (),
    error: str = "sample std",
) -> list[Path]:
    """Top-1 against sparsity, written as PNG and PDF; the figure is
    :func:`accuracy_vs_sparsity_figure`.

    Args:
        points, title, dense, hollow, error: As :func:`accuracy_vs_sparsity_figure`.
        out_stem: Output path without suffix; its folder is created.

    Returns:
        The written ``.png`` and ``.pdf`` paths.

    Raises:
        FigureError: As :func:`accuracy_vs_sparsity_figure`.
        OutputError: The files cannot be written.
    """
    return _save(accuracy_vs_sparsity_figure(points, title, dense, hollow, error), out_stem)


def accuracy_vs_sparsity_figure(
    points: Mapping[str, Sequence[tuple[float, float, float | None]]],
    title: str | None = None,
    dense: float | None = None,
    hollow: Iterable[str] = (),
    error: str = "sample std",
) -> Any:
    """Top-1 against sparsity, one line with error bars per method (Tables 6-7 as a plot).

    Methods at the same sparsity are spread a little apart along x (at most ±2.5% of the axis,
    which spans at least 10 percentage points, and the x label says so),
    so their error bars do not hide each other; the legend sits beside the axes, never over a
    point; the dense model is a dotted line; methods in ``hollow`` (e.g. rows with fewer seeds
    than the protocol requires, not ranked) are drawn with open markers and dashed lines.

    Args:
        points: Method label -> ``(sparsity, mean top-1, error or None)`` points; sparsity is the
            removed fraction of parameters in [0, 1] (plotted in percent), top-1 and error in
            percent. ``None`` draws no error bar (e.g. a single run).
        title: The figure's title (e.g. the protocol and certification); None: none.
        dense: The dense base model's top-1 (percent), drawn as a dotted line; None: none.
        hollow: Labels drawn with open markers.
        error: What an error bar is, for the y label (e.g. ``"95% CI"``).

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        FigureError: ``points`` is empty, a method has no points, or a sparsity is outside
            [0, 1] (a percentage passed as a fraction).
    """
    _check_arms(points, "plot_accuracy_vs_sparsity")
    _check_fractions(points)
    figure, (axes,) = _new_figure()
    figure.set_size_inches(_SIZE[0] * 1.45, _SIZE[1])
    offsets = _spread(points)
    _draw_methods(axes, points, offsets, set(hollow))
    if dense is not None:
        axes.axhline(dense, color="0.3", linestyle=":", label=f"dense base model {dense:.2f}")
    if title:
        axes.set_title(title, fontsize=9, wrap=True)
    _widen(axes)
    side_by_side = "; methods at one sparsity drawn side by side" if any(offsets.values()) else ""
    axes.set(
        xlabel=f"sparsity (% of parameters removed){side_by_side}",
        ylabel=f"test top-1 (%), bars: {error}",
    )
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    return figure


def _draw_methods(
    axes: Any,
    points: Mapping[str, Sequence[tuple[float, float, float | None]]],
    offsets: Mapping[str, float],
    hollow: set[str],
) -> None:
    """One error-bar line per method, its x shifted by its offset; ``hollow`` ones open, dashed."""
    for i, (label, method_points) in enumerate(points.items()):
        rows = sorted(method_points, key=lambda point: point[0])
        open_marker = label in hollow
        axes.errorbar(
            [100 * s + offsets[label] for s, _, _ in rows],
            [top1 for _, top1, _ in rows],
            yerr=[0.0 if err is None else err for _, _, err in rows],
            marker="os^Dvp*h"[i % 8],
            markerfacecolor="none" if open_marker else None,
            linestyle="--" if open_marker else "-",
            capsize=3,
            label=label,
        )


def _widen(axes: Any) -> None:
    """An x axis of at least ``_MIN_SPAN`` percentage points, so one sparsity is not a wide range."""
    low, high = axes.get_xlim()
    if high - low < _MIN_SPAN:
        centre = (low + high) / 2
        axes.set_xlim(centre - _MIN_SPAN / 2, centre + _MIN_SPAN / 2)


def _check_fractions(points: Mapping[str, Sequence[tuple[float, float, float | None]]]) -> None:
    for label, method_points in points.items():
        for sparsity, _, _ in method_points:
            if not 0 <= sparsity <= 1:
                raise FigureError(
                    f"plot_accuracy_vs_sparsity: {label!r} has sparsity {sparsity}, not in [0, 1]",
                    "pass sparsity as a fraction (0.5 for 50%)",
                )


def _spread(points: Mapping[str, Sequence[tuple[float, float, float | None]]]) -> dict[str, float]:
    """An x offset (percentage points of sparsity) per label, so that methods sharing a
    sparsity sit side by side: at most ±2.5% of the x range, centred; none when no two points
    share a sparsity."""
    xs = [100 * s for pts in points.values() for s, _, _ in pts]
    shared = [round(x, 1) for x in xs]
    if len(set(shared)) == len(shared):  # no two methods at one sparsity: nothing to spread
        return dict.fromkeys(points, 0.0)
    width = 0.05 * max(max(xs) - min(xs), _MIN_SPAN)
    n = len(points)
    step = width / max(n - 1, 1)
    return {label: (i - (n - 1) / 2) * step for i, label in enumerate(points)}


def ta_table(rows: Iterable[Mapping[str, Any] | Any]) -> str:
    """A markdown table of trainability accuracy and final accuracy per arm.

    One line per arm, in order of first appearance: TA on the validation and test splits
    (:func:`pruning_suite.engine.trainability.trainability_accuracy`) and final-epoch test top-1, each
    as mean ± sample standard deviation (ddof 1) over the arm's runs ("mean ± n/a" for one
    run), and the number of runs. Percent, two decimals.

    Args:
        rows: One per run: dicts or objects with ``arm`` (label), ``ta_val``, ``ta_test`` and
            ``final_test_top1`` (percent).

    Returns:
        A GitHub-flavoured markdown table (``tabulate``'s ``"github"`` format).

    Raises:
        FigureError: ``rows`` is empty, or a row lacks a field or holds a non-finite number.
    """
    from tabulate import tabulate

    by_arm: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        values = tuple(_number(row, name) for name in ("ta_val", "ta_test", "final_test_top1"))
        by_arm.setdefault(str(_get(row, "arm")), []).append(values)
    if not by_arm:
        raise FigureError("ta_table got no rows", "pass one row per run: arm, ta_val, ta_test, ...")
    headers = ["arm", "TA val (%)", "TA test (%)", "final test top-1 (%)", "runs"]
    lines = [
        [
            arm.replace("|", "\\|"),
            *(_mean_std([run[i] for run in runs]) for i in range(3)),
            len(runs),
        ]
        for arm, runs in by_arm.items()
    ]
    return tabulate(lines, headers, tablefmt="github", disable_numparse=True)


# ----------------------------------------------------------------------------------------------
# Helpers


def _check_arms(arms: Mapping[str, Sequence[Any]], where: str) -> None:
    if not arms:
        raise FigureError(
            f"{where}: nothing to plot (no arms)",
            "pass at least one label with at least one run of points",
        )
    empty = [label for label, runs in arms.items() if not runs or not all(len(r) for r in runs)]
    if empty:
        raise FigureError(
            f"{where}: arms {empty} have no runs, or a run without points",
            "drop the empty arms or runs before plotting",
        )
    for label, runs in arms.items():
        bad = next((n for n in _numbers(runs) if not math.isfinite(n)), None)
        if bad is not None:
            raise FigureError(
                f"{where}: {label!r} has a non-finite point ({bad})",
                "plot finite numbers only (a NaN accuracy is a failed run: rerun it)",
            )


def _numbers(items: Any) -> Iterator[float]:
    """Every number in nested runs and points (``None`` standing for no error bar is skipped)."""
    if isinstance(items, (int, float)):
        yield float(items)
    elif items is not None and not isinstance(items, str):
        for item in items:
            yield from _numbers(item)


def _new_figure(panels: int = 1) -> tuple[Any, list[Any]]:
    """A figure with ``panels`` side-by-side axes sharing the y axis."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise OutputError(
            "figures need matplotlib, which is not installed", "pip install matplotlib"
        ) from err
    width, height = _SIZE
    figure = Figure(figsize=(width * (1 + 0.6 * (panels - 1)), height), layout="constrained")
    all_axes = list(figure.subplots(1, panels, sharey=True, squeeze=False)[0])
    for axes in all_axes:
        axes.grid(True, alpha=0.3)
    return figure, all_axes


def _curve(runs: Sequence[Run]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Epochs, mean, min and max over the runs that logged each epoch."""
    by_epoch: dict[int, list[float]] = {}
    for run in runs:
        for epoch, value in run:
            by_epoch.setdefault(int(epoch), []).append(float(value))
    epochs = sorted(by_epoch)
    return (
        epochs,
        [statistics.fmean(by_epoch[e]) for e in epochs],
        [min(by_epoch[e]) for e in epochs],
        [max(by_epoch[e]) for e in epochs],
    )


def _draw_arms(
    axes: Any, arms: Mapping[str, Sequence[Run]], colors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Mean line and min-max band per arm (in ``colors`` when given); returns each arm's colour."""
    drawn = {}
    for label, runs in arms.items():
        epochs, mean, low, high = _curve(runs)
        color = (colors or {}).get(label)
        (line,) = axes.plot(epochs, mean, label=f"{label} (n={len(runs)})", color=color)
        drawn[label] = line.get_color()
        if len(runs) > 1:
            axes.fill_between(epochs, low, high, color=drawn[label], alpha=0.2, linewidth=0)
    return drawn


def _shade_stages(axes: Any, schedule: Sequence[tuple[int, float]], last_epoch: int) -> None:
    """Shade the LR stages alternately up to the last epoch run, each labelled with its LR."""
    starts = [start for start, _ in schedule]
    ends = [*starts[1:], last_epoch + 1]
    for i, ((start, lr), end) in enumerate(zip(schedule, ends, strict=True)):
        if start > last_epoch:  # a stage the runs never reached (e.g. a smoke budget)
            break
        axes.axvspan(start, min(end, last_epoch + 1), color=_STAGE_SHADES[i % 2], zorder=0, lw=0)
        axes.text(
            start,
            0.99,
            f" LR {lr:g}",
            transform=axes.get_xaxis_transform(),
            va="top",
            fontsize=8,
            clip_on=True,
        )


def _last_epoch(arms: Mapping[str, Sequence[Run]]) -> int:
    return max(int(epoch) for runs in arms.values() for run in runs for epoch, _ in run)


def _save(figure: Any, out_stem: Path | str) -> list[Path]:
    stem = Path(out_stem)
    paths = [stem.with_name(stem.name + suffix) for suffix in (".png", ".pdf")]
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(paths[0], dpi=150)
        figure.savefig(paths[1], metadata={"CreationDate": None})
    except OSError as err:
        raise OutputError(
            f"cannot write figure {paths[0]} / {paths[1]}: {err.strerror or err}",
            "pick a writable output folder",
        ) from err
    return paths


def _get(row: Mapping[str, Any] | Any, name: str) -> Any:
    try:
        return row[name] if isinstance(row, Mapping) else getattr(row, name)
    except (KeyError, AttributeError) as err:
        raise FigureError(
            f"ta_table: a row has no {name!r}: {row!r}",
            "rows need arm, ta_val, ta_test and final_test_top1",
        ) from err


def _number(row: Mapping[str, Any] | Any, name: str) -> float:
    value = float(_get(row, name))
    if not math.isfinite(value):
        raise FigureError(f"ta_table: {name} is {value} in {row!r}", "pass finite percentages")
    return value


def _mean_std(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = f"{statistics.stdev(values):.2f}" if len(values) > 1 else "n/a"
    return f"{mean:.2f} ± {std}"
