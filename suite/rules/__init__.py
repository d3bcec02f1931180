"""The fairness rules of Wang et al. (arXiv 2301.05219) as code: one :class:`Rule` type, a registry
every consumer reads (:func:`load_rules`), the rules themselves, certification and budgets.

Bare check names in RULES.md resolve in this package.
"""

from .deep import check_recounted_counts, check_saved_model
from .evidence import check_accuracy_counts, check_copied_seeds, check_evidence_recorded
from .measures import (
    check_base_params,
    check_delta_top1,
    check_effective_counts,
    check_epoch_numbers,
    check_final_is_last_epoch,
    check_flops_are_twice_macs,
    check_layer_ratios,
    check_pruned_not_larger,
    check_rankable,
    check_sparsity,
    check_speedup,
)
from .provenance import (
    check_certification,
    check_protocol_content_hash,
    check_pruned_model_file,
    check_run_id,
    check_run_id_file_name,
)
from .registry import load_rules
from .rule import RULESET_VERSION, CheckContext, Finding, Rule, TreeContext, TreeEntry
from .scratch import (
    ScratchBudget,
    check_retraining_override,
    check_scratch_budget,
    scratch_epochs,
    scratch_recipe,
)
from .setups import (
    SETUPS,
    certify,
    check_base_model,
    check_dataset_checksum,
    check_pruning_stage_compute,
    check_pruning_stage_epochs,
    check_pruning_stage_lr,
    check_retraining_epochs,
    check_retraining_recipe,
    check_target_tolerance,
    division_of,
    recheck,
)
from .tree import (
    check_base_model_figures,
    check_base_models,
    check_duplicate_run_ids,
    check_protocol_contents,
    check_protocol_versions,
    check_seed_count,
    check_seeds_distinct,
)

__all__ = [
    "RULESET_VERSION",
    "SETUPS",
    "CheckContext",
    "Finding",
    "Rule",
    "ScratchBudget",
    "TreeContext",
    "TreeEntry",
    "certify",
    "recheck",
    "check_accuracy_counts",
    "check_base_model",
    "check_base_models",
    "check_base_params",
    "check_certification",
    "check_base_model_figures",
    "check_copied_seeds",
    "check_dataset_checksum",
    "check_delta_top1",
    "check_duplicate_run_ids",
    "check_effective_counts",
    "check_epoch_numbers",
    "check_evidence_recorded",
    "check_final_is_last_epoch",
    "check_flops_are_twice_macs",
    "check_layer_ratios",
    "check_protocol_content_hash",
    "check_protocol_contents",
    "check_protocol_versions",
    "check_pruned_model_file",
    "check_pruned_not_larger",
    "check_pruning_stage_epochs",
    "check_pruning_stage_compute",
    "check_pruning_stage_lr",
    "check_rankable",
    "check_recounted_counts",
    "check_retraining_epochs",
    "check_retraining_override",
    "check_retraining_recipe",
    "check_run_id",
    "check_run_id_file_name",
    "check_saved_model",
    "check_scratch_budget",
    "check_seed_count",
    "check_seeds_distinct",
    "check_sparsity",
    "check_speedup",
    "check_target_tolerance",
    "division_of",
    "load_rules",
    "scratch_epochs",
    "scratch_recipe",
]
