"""Wall-clock time of the main job on the default protocol, cold and warm base-model cache.

Runs ``pruning-suite run --plugin l1norm`` twice in a subprocess with a fresh, temporary cache
and results folder: the first run trains the base model, the second reuses it. Prints the figures
the README quotes. Usage: ``python benchmarks/bench_main_job.py [--protocol ID] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time_run(cli: str, protocol: str, env: dict[str, str], out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [cli, "run", "--plugin", "l1norm", "--protocol", protocol, "--out", str(out), "--quiet"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocol", default="digits-convnet")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cli = shutil.which("pruning-suite", path=str(Path(sys.executable).parent)) or "pruning-suite"
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PRUNING_SUITE_CACHE": str(Path(tmp) / "cache")}
            cold.append(_time_run(cli, args.protocol, env, Path(tmp) / "subs"))
            warm.append(_time_run(cli, args.protocol, env, Path(tmp) / "subs"))
    print(
        f"pruning-suite run --plugin l1norm --protocol {args.protocol}  ({os.cpu_count()} CPUs, {args.repeats} repeats)"
    )
    print(
        f"  first run (trains the base model): median {statistics.median(cold):.1f} s  (all: {', '.join(f'{t:.1f}' for t in cold)})"
    )
    print(
        f"  second run (base model cached):    median {statistics.median(warm):.1f} s  (all: {', '.join(f'{t:.1f}' for t in warm)})"
    )


if __name__ == "__main__":
    main()
