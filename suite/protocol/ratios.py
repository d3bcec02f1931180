"""The one ratio language: layer-wise pruning ratios for every method and protocol.

A *ratio* is the fraction (not percent) of a layer's units (Conv2d filters / Linear neurons)
removed, in ``[0, 1)``. How a ratio becomes a count of units lives in exactly one place,
:func:`pruning_suite.engine.pruning.units_to_remove` (``min(ceil(ratio * n), n - 1)``: round up, keep at
least one unit); this module only decides WHICH ratio each layer gets.

Three text forms, the ones Wang et al. (arXiv 2301.05219) and the authors' TPP/GReg code use:

- ``"0.5"`` -- one ratio for every prunable layer;
- ``"*layer*.conv1:0.9,fc1:0.2"`` -- comma-separated ``pattern:ratio`` entries; patterns are
  ``fnmatch`` patterns matched case-sensitively against module names, and a LATER matching entry
  overrides an earlier one; a layer no entry matches gets 0. An entry ``!pattern`` SKIPS the
  layers it matches (they get 0 whatever any entry says, wherever the ``!`` entry stands);
- ``"[0, 0.6, 0.6, 0.6, 0.21, 0]"`` -- a JSON list with one ratio per *stage* of the network; a
  stage map (e.g. :data:`resnet_stage_of`) says which stage a layer is in.

Skip patterns may also be given to :func:`parse_ratio_spec` as ``skip=[...]``, which works with
all three forms. Patterns cannot contain ``,`` or ``:`` (write ``layer[12]`` rather than a
comma-separated character class).

Which layers are *prunable* at all (e.g. the paper prunes only the convs that are not the last of
a residual block, never the stem, shortcut convs or classifier) is the protocol's
``prunable_layers``; a spec is resolved over those layer names only.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from ..errors import ProtocolError, PruningError

__all__ = [
    "CountRule",
    "RatioSpec",
    "ResNetStages",
    "StageOf",
    "achieved",
    "parse_ratio_spec",
    "resnet_stage_of",
]

StageOf = Callable[[str], int | None]
"""A stage map: module name -> 0-based stage index, or None for a module in no stage.

A stage map used with a per-stage list must also tell the number of stages, either through a
``num_stages`` attribute (as :class:`ResNetStages` has) or through ``resolve(num_stages=...)``.
"""

CountRule = Callable[[float, int, str], int]
"""The ratio-to-count rule, ``rule(ratio, num_units, layer_name) -> units to remove``.

There is exactly one: :func:`pruning_suite.engine.pruning.units_to_remove`.
"""

FORMS = (
    "valid forms: '0.5' (every prunable layer); "
    "'*layer*.conv1:0.9,fc1:0.2' (comma-separated fnmatch pattern:ratio, later entries override "
    "earlier, '!pattern' skips matching layers); "
    "'[0, 0.6, 0.6, 0.6, 0.21, 0]' (a JSON list, one ratio per stage); "
    "ratios are fractions in [0, 1), not percent"
)

_SHOWN = 6


@dataclass(frozen=True)
class RatioSpec:
    """A parsed layer-wise ratio specification (build it with :func:`parse_ratio_spec`).

    Attributes:
        kind: ``"uniform"``, ``"patterns"`` or ``"stages"``.
        rules: ``(pattern, ratio)`` pairs in the order given, later ones overriding earlier ones;
            a uniform spec is the single rule ``("*", ratio)``; empty for a per-stage spec.
        stages: One ratio per stage (per-stage specs only, else ``()``).
        skip: fnmatch patterns of layers that get ratio 0 whatever the rules or stages say.
        source: The text it was parsed from, stripped (record it, e.g. in a submission).
    """

    kind: Literal["uniform", "patterns", "stages"]
    rules: tuple[tuple[str, float], ...] = ()
    stages: tuple[float, ...] = ()
    skip: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def from_layer_ratios(
        cls, layer_ratios: Mapping[str, float], skip: Sequence[str] = ()
    ) -> RatioSpec:
        """The spec of a protocol target's ``layer_ratios`` table (pattern -> ratio, in order).

        Args:
            layer_ratios: fnmatch pattern -> ratio, later entries overriding earlier ones, as in
                :class:`pruning_suite.protocol.spec.PruningTarget`.
            skip: Patterns of layers that always get 0.

        Returns:
            A ``"patterns"`` spec; ``source`` is its text form.

        Raises:
            ProtocolError: A ratio is outside ``[0, 1)`` or a pattern is empty.
        """
        source = ",".join(f"{p}:{r!r}" for p, r in layer_ratios.items())
        if not layer_ratios:
            _refuse(source, "it is empty")
        rules = tuple(
            (_checked_pattern(p, source), _ratio(r, source, repr(p)))
            for p, r in layer_ratios.items()
        )
        skips = tuple(_checked_pattern(p, source) for p in skip)
        return cls("patterns", rules=rules, skip=skips, source=source)

    def resolve(
        self,
        layer_names: Sequence[str],
        stage_of: StageOf | None = None,
        *,
        num_stages: int | None = None,
        strict: bool = True,
    ) -> dict[str, float]:
        """The ratio of every prunable layer.

        Args:
            layer_names: The prunable layers' module names (e.g. from
                :func:`pruning_suite.engine.pruning.find_prunable_layers`).
            stage_of: The stage map; required for a per-stage spec, ignored otherwise.
            num_stages: The network's number of stages; defaults to ``stage_of.num_stages``. A
                per-stage list must have exactly this many entries.
            strict: Refuse patterns (ratio or skip) that match none of ``layer_names`` -- almost
                always a typo. A uniform spec's ``"*"`` is exempt.

        Returns:
            Layer name -> ratio in ``[0, 1)``, for every name in ``layer_names``, in that order.

        Raises:
            ProtocolError: A per-stage spec without a stage map or stage count, a list whose
                length differs from the stage count, a layer in no stage or in a stage out of
                range, or (``strict``) a pattern matching no layer.
        """
        names = list(layer_names)
        if strict:
            self._check_all_match(names)
        if self.kind == "stages":
            ratios = self._by_stage(names, stage_of, num_stages)
        else:
            ratios = {name: _last_match(self.rules, name) for name in names}
        return {n: 0.0 if _matches_any(self.skip, n) else r for n, r in ratios.items()}

    def counts(
        self,
        layer_widths: Mapping[str, int],
        stage_of: StageOf | None = None,
        *,
        rule: CountRule,
        num_stages: int | None = None,
        strict: bool = True,
    ) -> dict[str, int]:
        """How many units each layer loses, by THE count rule the caller passes in.

        Args:
            layer_widths: Prunable layer name -> units before pruning (``>= 1``).
            rule: The ratio-to-count rule, ``rule(ratio, num_units, layer_name) -> count``:
                :func:`pruning_suite.engine.pruning.units_to_remove` (passed in, since the engine
                sits above the protocol layer).
            stage_of: As in :meth:`resolve`.
            num_stages: As in :meth:`resolve`.
            strict: As in :meth:`resolve`.

        Returns:
            Layer name -> units to remove, ``min(ceil(ratio * n), n - 1)``, for every layer.

        Raises:
            ProtocolError: As :meth:`resolve`.
        """
        ratios = self.resolve(list(layer_widths), stage_of, num_stages=num_stages, strict=strict)
        return {n: rule(r, layer_widths[n], n) for n, r in ratios.items()}

    def _by_stage(
        self, names: list[str], stage_of: StageOf | None, num_stages: int | None
    ) -> dict[str, float]:
        if stage_of is None:
            raise ProtocolError(
                f"the per-stage ratio list {self.source or list(self.stages)} needs a stage map",
                "pass stage_of (e.g. pruning_suite.protocol.ratios.resnet_stage_of), or use a "
                "'pattern:ratio' list",
            )
        count = num_stages if num_stages is not None else getattr(stage_of, "num_stages", None)
        if count is None:
            raise ProtocolError(
                f"cannot check the per-stage ratio list {list(self.stages)}: the stage map "
                f"{_label(stage_of)} does not say how many stages the network has",
                "pass resolve(..., num_stages=N) or give the stage map a num_stages attribute",
            )
        if len(self.stages) != count:
            raise ProtocolError(
                f"the per-stage ratio list {list(self.stages)} has {len(self.stages)} entries but "
                f"the network has {count} stages under {_label(stage_of)}",
                _stage_hint(stage_of, count),
            )
        return {name: self.stages[_stage(stage_of, name, count)] for name in names}

    def _check_all_match(self, names: list[str]) -> None:
        patterns = [p for p, _ in self.rules if self.kind == "patterns"] + list(self.skip)
        unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
        if unmatched:
            raise ProtocolError(
                f"ratio pattern(s) {unmatched} in {self.source!r} match none of the prunable "
                f"layers {_few(names)}",
                "fix the pattern (fnmatch over module names, case-sensitive, e.g. "
                "'layer1.*.conv1'), or pass strict=False",
            )


def parse_ratio_spec(text: str, skip: Sequence[str] = ()) -> RatioSpec:
    """Parse a ratio specification (see the module docstring for the three forms).

    Args:
        text: ``"0.5"``, ``"*layer*.conv1:0.9,fc1:0.2,!layer4.*"`` or
            ``"[0, 0.6, 0.6, 0.6, 0.21, 0]"``. Surrounding whitespace is ignored.
        skip: fnmatch patterns of layers that always get ratio 0 (any form); merged with the
            ``!pattern`` entries of a pattern list.

    Returns:
        The spec.

    Raises:
        ProtocolError: Malformed text, a ratio outside ``[0, 1)`` (or not a number), an empty
            pattern, or an empty list; the hint shows the valid forms.
    """
    if not isinstance(text, str):
        raise ProtocolError(f"a ratio spec must be text, got {type(text).__name__}", FORMS)
    source = text.strip()
    extra_skip = tuple(_checked_pattern(p, source) for p in skip)
    if not source:
        _refuse(text, "it is empty")
    if source.startswith("[") and source.endswith("]"):
        stages = _parse_stage_list(source)
        return RatioSpec("stages", stages=stages, skip=extra_skip, source=source)
    if ":" not in source and "," not in source and not source.startswith("!"):
        ratio = _ratio(source, source, "the ratio")
        return RatioSpec("uniform", rules=(("*", ratio),), skip=extra_skip, source=source)
    rules, skips = _parse_entries(source)
    return RatioSpec("patterns", rules=rules, skip=skips + extra_skip, source=source)


def achieved(
    layer_widths_before: Mapping[str, int], after: Mapping[str, int]
) -> dict[str, tuple[int, float]]:
    """Per-layer report of what pruning actually removed.

    Args:
        layer_widths_before: Layer name -> units (output channels / features) before pruning.
        after: Layer name -> units after pruning; must name exactly the same layers.

    Returns:
        Layer name -> ``(units removed, achieved ratio)``, the ratio a fraction of the units
        before (``removed / before``), in ``layer_widths_before`` order. Because the count rule
        rounds up, the achieved ratio is at least the requested one unless the keep-one cap hit.

    Raises:
        PruningError: The two mappings name different layers, a width before is not positive,
            or a layer grew.
    """
    missing = [n for n in layer_widths_before if n not in after]
    extra = [n for n in after if n not in layer_widths_before]
    if missing or extra:
        raise PruningError(
            f"widths before and after pruning name different layers: missing after "
            f"{_few(missing)}, only after {_few(extra)}",
            "give both mappings for the same layers (e.g. every Conv2d/Linear of the model)",
        )
    report = {}
    for name, before in layer_widths_before.items():
        now = after[name]
        if before < 1 or now < 0 or now > before:
            raise PruningError(
                f"layer {name!r} went from {before} to {now} units; expected 0 <= after <= before "
                "and before >= 1"
            )
        report[name] = (before - now, (before - now) / before)
    return report


# ----------------------------------------------------------------------------------------------
# Stage maps

_LAYER = re.compile(r"^layer(\d+)(?:\.|$)")
_STEM = frozenset({"conv1", "bn1", "relu", "maxpool"})
_CLASSIFIER = frozenset({"fc", "linear"})


@dataclass(frozen=True)
class ResNetStages:
    """Stage map of torchvision-style and CIFAR-style ResNets, in the paper's convention.

    Wang et al. (arXiv 2301.05219) and the authors' code give ResNet ratios per stage: one entry
    for the stem, one per residual stage ``layer1 .. layerK``, one for the classifier. E.g.
    ResNet-50 at 2.31x speedup is ``[0, 0.60, 0.60, 0.60, 0.21, 0]``:

    ======== =========================================== =======
    position modules                                     ratio
    ======== =========================================== =======
    0        stem: ``conv1`` (also ``bn1``, ``relu``,      0
             ``maxpool``)
    1        ``layer1.*`` (all blocks, incl. downsample)  0.60
    2        ``layer2.*``                                 0.60
    3        ``layer3.*``                                 0.60
    4        ``layer4.*``                                 0.21
    5        classifier ``fc`` (or ``linear``)            0
    ======== =========================================== =======

    So a list has ``num_layers + 2`` entries: 6 for torchvision ResNet-18/34/50/101/152
    (``num_layers=4``), 5 for the CIFAR ResNet-20/32/56/110 (``num_layers=3``). The list only
    assigns ratios; the protocol's ``prunable_layers`` still decides which layers are pruned at
    all (the paper: conv1 of a BasicBlock, conv1 and conv2 of a Bottleneck; never the stem, the
    shortcut convs or the classifier), so the stem and classifier entries are 0 in practice.

    Attributes:
        num_layers: Residual stages ``layer1 .. layer{num_layers}``.

    Call it with a module name to get its stage: ``0`` (stem), ``K`` (``layerK`` or anything
    inside it), ``num_layers + 1`` (``fc`` / ``linear``), None for anything else (``avgpool``,
    the root ``""``). A ``layerK`` with ``K > num_layers`` raises :class:`ProtocolError`.
    """

    num_layers: int = 4

    @property
    def num_stages(self) -> int:
        """Entries a per-stage list must have: stem + residual stages + classifier."""
        return self.num_layers + 2

    def __call__(self, name: str) -> int | None:
        """The stage of module ``name`` (see the class docstring)."""
        found = _LAYER.match(name)
        if found:
            stage = int(found.group(1))
            if not 1 <= stage <= self.num_layers:
                raise ProtocolError(
                    f"module {name!r} is in residual stage {stage}, but this stage map has "
                    f"layer1..layer{self.num_layers}",
                    f"use ResNetStages(num_layers={max(stage, 1)})",
                )
            return stage
        if name in _CLASSIFIER:
            return self.num_layers + 1
        if name.split(".")[0] in _STEM:
            return 0
        return None


resnet_stage_of = ResNetStages(num_layers=4)
"""Stage map of torchvision ResNet-18/34/50/101/152: stem 0, ``layer1..4`` 1..4, ``fc`` 5.

A per-stage list for it has 6 entries (the paper's ResNet-50 2.31x: ``[0, 0.60, 0.60, 0.60,
0.21, 0]``). For CIFAR ResNets (``layer1..3``) use ``ResNetStages(num_layers=3)``.
"""


def _stage(stage_of: StageOf, name: str, count: int) -> int:
    stage = stage_of(name)
    if stage is None or not 0 <= stage < count:
        where = "no stage" if stage is None else f"stage {stage}, outside 0..{count - 1}"
        raise ProtocolError(
            f"prunable layer {name!r} is in {where} under {_label(stage_of)}",
            "a per-stage list fits only networks its stage map knows; use a stage map for this "
            "architecture or a 'pattern:ratio' list",
        )
    return stage


def _label(stage_of: StageOf) -> str:
    if isinstance(stage_of, ResNetStages):
        return repr(stage_of)
    return getattr(stage_of, "__qualname__", None) or repr(stage_of)


def _stage_hint(stage_of: StageOf, count: int) -> str:
    if isinstance(stage_of, ResNetStages):
        last = count - 1
        return (
            f"give {count} ratios: position 0 the stem, 1..{last - 1} layer1..layer{last - 1}, "
            f"{last} the classifier (e.g. ResNet-50 2.31x: [0, 0.6, 0.6, 0.6, 0.21, 0])"
        )
    return f"give exactly {count} ratios, one per stage, in stage order"


# ----------------------------------------------------------------------------------------------
# Parsing helpers


def _parse_stage_list(source: str) -> tuple[float, ...]:
    try:
        values = json.loads(source)
    except json.JSONDecodeError as err:
        _refuse(source, f"it is not a JSON list ({err.msg} at column {err.colno})")
    if not values:
        _refuse(source, "the per-stage list is empty")
    if not isinstance(values, list):
        _refuse(source, "it is not a JSON list")
    for i, value in enumerate(values):
        if isinstance(value, str):
            _refuse(source, f"stage {i} {value!r} is not a number")
    return tuple(_ratio(v, source, f"stage {i}") for i, v in enumerate(values))


def _parse_entries(source: str) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
    rules: list[tuple[str, float]] = []
    skips: list[str] = []
    for position, raw in enumerate(source.split(","), start=1):
        entry = raw.strip()
        if entry.startswith("!"):
            skips.append(_checked_pattern(entry[1:], source))
            continue
        pattern, sep, value = entry.rpartition(":")
        if not sep:
            _refuse(source, f"entry {position} {entry!r} is not 'pattern:ratio' or '!pattern'")
        rules.append((_checked_pattern(pattern, source), _ratio(value, source, repr(pattern))))
    return tuple(rules), tuple(skips)


def _checked_pattern(pattern: str, source: str) -> str:
    pattern = pattern.strip() if isinstance(pattern, str) else pattern
    if not isinstance(pattern, str) or not pattern or any(c in pattern for c in ",:"):
        _refuse(source, f"{pattern!r} is not a module-name pattern (empty, or holds ',' or ':')")
    return pattern


def _ratio(value: object, source: str, what: str) -> float:
    """``value`` as a float in [0, 1), or a ProtocolError about ``what`` in ``source``."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            _refuse(source, f"{what} {text!r} is a percent; write the fraction ({text[:-1]}/100)")
        try:
            value = float(text)
        except ValueError:
            _refuse(source, f"{what} {text!r} is not a number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _refuse(source, f"{what} {value!r} is not a number")
    ratio = float(value)
    if not (math.isfinite(ratio) and 0.0 <= ratio < 1.0):
        why = "would empty the layers" if ratio >= 1.0 else "is outside [0, 1)"
        _refuse(source, f"{what} {value!r} {why} (at least one unit is always kept)")
    return ratio


def _refuse(source: object, why: str) -> NoReturn:
    raise ProtocolError(f"malformed ratio spec {source!r}: {why}", FORMS)


def _last_match(rules: Sequence[tuple[str, float]], name: str) -> float:
    ratio = 0.0
    for pattern, value in rules:
        if fnmatch.fnmatchcase(name, pattern):
            ratio = value
    return ratio


def _matches_any(patterns: Sequence[str], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    more = f", ... ({len(names)} in all)" if len(names) > _SHOWN else ""
    return f"[{shown}{more}]"
