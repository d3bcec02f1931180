"""Test driver: ``python crash_driver.py MODE:PHASE:EPOCH|- MARKER <pruning-suite CLI args...>``.

Runs the command line with one more observer plugin that, at the end of epoch EPOCH of PHASE
(``base``, ``pruning``, ``retraining``), touches MARKER and then, MODE ``halt``, sleeps until it
is killed (a test can ``kill -9`` the run at a known point), or, MODE ``pause``, waits until a
file ``MARKER.go`` exists and goes on. ``-`` stops nowhere.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pruning_suite import hookimpl
from pruning_suite.contract import plugins
from pruning_suite.run import runner


class Halt:
    """Touches the marker and sleeps at the end of one epoch of one phase."""

    def __init__(self, where: str, marker: Path) -> None:
        mode, phase, epoch = where.split(":")
        self.halt, self.phase, self.epoch, self.marker = mode == "halt", phase, int(epoch), marker

    @hookimpl
    def on_epoch_end(self, phase: str, row: dict) -> None:
        if phase == self.phase and row["epoch"] == self.epoch:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
            go = self.marker.with_name(self.marker.name + ".go")
            while self.halt or not go.exists():
                time.sleep(0.05)


def main() -> int:
    where, marker, *argv = sys.argv[1:]
    if where != "-":
        halt = Halt(where, Path(marker))
        runner.load_registry = lambda: plugins.load_registry(extra_plugins=(halt,))
    from pruning_suite.cli.main import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
