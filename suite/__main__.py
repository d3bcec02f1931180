"""``python -m pruning_suite``: the command line, e.g. ``torchrun --nproc-per-node 2 -m pruning_suite run ...``."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
