"""Validating submission files and folders against the schema and the registered rules (torch-free).

:mod:`~pruning_suite.validate.stages` reads a file, :mod:`~pruning_suite.validate.checking` runs
the registered rules, :mod:`~pruning_suite.validate.discovery` finds the files of a folder, and
:mod:`~pruning_suite.validate.output` formats what was found.
"""

from .checking import check_file, check_tree, validate_file
from .discovery import check_paths, validate_paths
from .output import format_problems, has_errors, results_to_json, strict_results
from .problems import SCHEMA_RULE, FileResult, Problem
from .stages import MAX_PROBLEMS_PER_FILE, SUPPORTED_SCHEMA_VERSIONS

__all__ = [
    "MAX_PROBLEMS_PER_FILE",
    "SCHEMA_RULE",
    "SUPPORTED_SCHEMA_VERSIONS",
    "FileResult",
    "Problem",
    "check_file",
    "check_paths",
    "check_tree",
    "format_problems",
    "has_errors",
    "results_to_json",
    "strict_results",
    "validate_file",
    "validate_paths",
]
