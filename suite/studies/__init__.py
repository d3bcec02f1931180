"""Studies: the paper's findings rerun as sets of runs, with verdicts and a page built from them.

Wang et al. (arXiv 2301.05219) explain two "mysteries" and recommend a calibration; each is a
registered :class:`Study` (hook ``register_studies``; ``pruning-suite study NAME``):

- ``lr-sweep`` (M1, :mod:`.lr_sweep`): one method, the same epochs, several retraining LR schedules.
- ``scratch`` (M2, :mod:`.scratch`): the method at its protocol against scratch training under the
  SX-A and SX-B budgets.
- ``cross-recipe`` (:mod:`.cross_recipe`): methods A and B each retrained with FT_A and FT_B.

A study expands into arms of run configurations; :func:`run_study` (:mod:`.executor`) skips runs
already on disk and hands the rest to an :class:`Executor`; :func:`write_study_report`
(:mod:`.page`) writes the page from the submissions only.
"""

from __future__ import annotations

from .base import Arm, Study, StudyResult, canonical_schedule, extend_first_stage
from .cross_recipe import CrossRecipe, cross_recipe_arms, cross_recipe_verdict
from .executor import Executor, LocalExecutor, planned_path, run_study
from .lr_sweep import LRSweep, lr_sweep_arms
from .lr_sweep_claims import claims, claims_text
from .page import write_study_report
from .scratch import Scratch, scratch_arms, scratch_claims
from .verdicts import Claim

__all__ = [
    "Arm",
    "Claim",
    "CrossRecipe",
    "Executor",
    "LRSweep",
    "LocalExecutor",
    "Scratch",
    "Study",
    "StudyResult",
    "canonical_schedule",
    "claims",
    "claims_text",
    "cross_recipe_arms",
    "cross_recipe_verdict",
    "extend_first_stage",
    "lr_sweep_arms",
    "planned_path",
    "run_study",
    "scratch_arms",
    "scratch_claims",
    "write_study_report",
]
