"""Every pluggy hook of pruning-suite, grouped by phase. Each docstring is the hook's reference.

A plugin is a module (or object) with functions marked ``@pruning_suite.hookimpl`` and is found
through the ``pruning_suite`` entry-point group, built-in methods included. One run uses exactly
one method, so a method's own steps are methods of its class (:class:`~pruning_suite.PruningMethod`);
the hooks here are for registration and for observers that every plugin may see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .method import PruningMethod

PROJECT = "pruning_suite"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# --- registration -------------------------------------------------------------------------------


@hookspec
def register_methods() -> list[type[PruningMethod]]:
    """Return the pruning-method classes this plugin provides.

    Every implementation is called; the results are concatenated. A plugin registered under the
    entry-point name ``N`` must return a method whose ``name`` is ``N``. Return ``[]`` (or ``None``)
    to register nothing.
    """


@hookspec
def register_datasets() -> dict[str, Any]:
    """Return the dataset sources this plugin provides, by the name a protocol's ``dataset.name`` uses.

    Every implementation is called, plugin by plugin; names must be unique across plugins (a
    plugin registering a name registered already, or raising, is listed as broken and adds
    nothing; the others load), and each key must equal its source's ``name``. Each value is a
    :class:`pruning_suite.data.source.DatasetSource`: its channels, whether it has an official
    test split, and either ``read(data_dir) -> RawData`` (decoded arrays, held on the device) or
    an image-folder loader. ``load_dataset`` looks a protocol's ``dataset.name`` up among these.
    Return ``{}`` (or ``None``) to register nothing.

    Define the classes and functions at a module's top level: the pruning stage runs in a spawned
    process, which receives them by pickling. To keep torch out of the plugin module's import,
    define torch-using code in a submodule and import it inside ``read``.
    """


@hookspec
def register_architectures() -> dict[str, Any]:
    """Return model builders by the name a protocol's ``architecture.name`` uses.

    Every implementation is called; names must be unique across plugins. A builder is called as
    ``builder(input_shape, num_classes, **kwargs)`` and returns an ``nn.Module`` (see
    :data:`pruning_suite.engine.models.ModelBuilder`). Return ``{}`` (or ``None``) for none.

    Define the classes and functions at a module's top level: the pruning stage runs in a spawned
    process, which receives them by pickling. To keep torch out of the plugin module's import,
    define ``nn.Module`` classes in a submodule and import it inside the builder (``def
    build(input_shape, num_classes): from ._nets import Net; return Net(...)``).
    """


@hookspec
def register_studies() -> dict[str, Any]:
    """Return studies by the name ``pruning-suite study NAME`` uses.

    Every implementation is called; names must be unique across plugins (lower-case letters,
    digits and '-', equal to the study's ``name``). The object's interface is
    :class:`pruning_suite.studies.Study`: at least ``name`` and ``arms``; its subcommand gets
    ``--plugin`` unless the study adds its own or overrides ``base_plugin``. Return ``{}`` (or ``None``) for none.
    """


@hookspec
def register_report_formats() -> dict[str, Any]:
    """Return report formats by the name ``pruning-suite report --format NAME`` uses.

    Every implementation is called; names must be unique across plugins (lower-case letters,
    digits and '-', equal to the format's ``name``). The object's interface is
    :class:`pruning_suite.report.ReportFormat`; ``render`` returns text (anything else, or an
    exception, is an error naming the plugin). Return ``{}`` (or ``None``) for none.
    """


@hookspec
def register_protocol_folders() -> dict[str, Any]:
    """Return folders of protocol files (``*.toml``) by a name for the folder.

    Every implementation is called; names must be unique across plugins. A value is a
    ``pathlib.Path``, a path string or an ``importlib.resources`` traversable holding
    ``<id>.toml`` files; :mod:`pruning_suite.protocol.catalogue` lists and loads them with the
    suite's own (``pruning-suite protocols``, ``run --protocol ID``). Protocol ids must be unique
    across all folders: an id two folders hold is an error naming both. Return ``{}`` (or
    ``None``) for none.
    """


@hookspec
def register_rules() -> dict[str, Any]:
    """Return fairness rules by their stable id (``R-XXX-N``).

    Every implementation is called; ids must be unique across plugins. The object's interface is
    :class:`pruning_suite.rules.Rule`; every rule is run by ``validate``, ``report``,
    certification and the runner. Return ``{}`` (or ``None``) for none.
    """


# --- observers (called on every plugin; return values are ignored) -------------------------------


@hookspec
def on_run_start(run: dict[str, Any]) -> None:
    """Called once before the base model is loaded.

    Args:
        run: ``run_id``, ``protocol`` (id), ``protocol_version``, ``method``, ``target``,
            ``seed`` and ``device``.
    """


@hookspec
def on_stage(stage: str) -> None:
    """Called when a named stage of the run starts.

    Args:
        stage: The stage's name: ``"data"``, ``"base model"``, ``"pruning"`` (the method's
            pruning stage: its training, and every prune round applied and verified by the
            core), ``"measure"``, ``"re-initialize"``, ``"retraining"``, ``"evaluation"``,
            ``"save model"``, ``"assembly"`` or ``"write"``.
    """


@hookspec
def on_phase_start(phase: str, epochs: int) -> None:
    """Called when a training phase starts, before its first epoch.

    Args:
        phase: ``"base"``, ``"pruning"`` (only when the pruning stage trains) or
            ``"retraining"``.
        epochs: The epochs the phase will run.
    """


@hookspec
def on_batches(phase: str, done: int, total: int) -> None:
    """Called during a training epoch of the base model or of retraining, at most once a second
    (``pruning_suite.engine.train.BATCH_REPORT_S``), so a long epoch's progress shows.

    Args:
        phase: ``"base"`` or ``"retraining"``.
        done: Batches of the running epoch trained so far.
        total: Batches per epoch.
    """


@hookspec
def on_epoch_end(phase: str, row: dict[str, Any]) -> None:
    """Called after every training epoch.

    Args:
        phase: ``"base"``, ``"pruning"`` or ``"retraining"``.
        row: The epoch's log row: ``epoch``, ``lr``, ``train_loss``, ``val_top1`` and
            ``test_top1`` (percent).
    """


@hookspec
def on_run_end(submission: dict[str, Any], path: str) -> None:
    """Called once after the submission file has been written.

    Args:
        submission: The submission as JSON-ready data.
        path: Where it was written.
    """
