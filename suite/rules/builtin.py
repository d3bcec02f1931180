"""The suite's own rules, registered as a core plugin (see ``CORE_PLUGINS``) like any plugin's.

The order is the order ``validate`` runs and reports them in: the rules the runner enforces by
construction and the reading rule (nothing for a rule to check), then the file rules, then the
tree rules.
"""

from __future__ import annotations

from ..contract.hookspecs import hookimpl
from . import deep, evidence, measures, provenance, scratch, setups, targets, tree
from .rule import Rule

_BY_CONSTRUCTION = {
    "R-BASE-1": "every method under a protocol starts from the one base model the suite trains "
    "from the protocol's recipe and seed, cached by content hash",
    "R-DATA-1": "the loaded data's sha256 equals the protocol's; otherwise the run stops",
    "R-RETRAIN-1": "retraining is the suite's loop with the protocol's recipe",
    "R-PRUNE-1": "the method returns scores only; removal is physical; counts are measured",
    "R-PRUNE-2": "a layer of n units at ratio r loses min(ceil(r n), n - 1) units",
    "R-PRUNE-3": "the physically pruned model equals the masked reference within 1e-5",
    "R-PRUNE-4": "the method scores a deep copy of the base model and must not change it",
    "R-PRUNE-5": "masked weights stay exactly zero through retraining",
    "R-TRAIN-1": "a non-finite training loss stops the run",
    "R-PROTO-2": "a protocol file reusing a shipped id and version with other content is refused",
}

_READ = (
    "the file is readable without the suite: size, nesting, JSON syntax, NaN/Infinity and "
    "duplicate keys refused; the JSON Schema and the strict pydantic model (validate.stages)"
)


def _file_rules() -> list[Rule]:
    return [
        Rule("R-MEAS-1", measures.check_flops_are_twice_macs),
        Rule("R-MEAS-2", measures.check_speedup),
        Rule("R-MEAS-3", measures.check_sparsity),
        Rule("R-MEAS-4", measures.check_base_params),
        Rule("R-MEAS-5", measures.check_layer_ratios),
        Rule("R-MEAS-6", measures.check_pruned_not_larger),
        Rule("R-MEAS-7", measures.check_effective_counts),
        Rule("R-EVAL-1", measures.check_final_is_last_epoch),
        Rule("R-EVAL-2", measures.check_delta_top1),
        Rule("R-EVAL-3", evidence.check_accuracy_counts),
        Rule("R-EVID-2", evidence.check_evidence_recorded),
        Rule("R-DEEP-1", deep.check_recounted_counts, scope="deep"),
        Rule("R-DEEP-2", deep.check_saved_model, scope="deep"),
        Rule("R-LOG-1", measures.check_epoch_numbers),
        Rule("R-RANK-1", measures.check_rankable),
        Rule("R-ID-2", provenance.check_run_id),
        Rule("R-ID-1", provenance.check_run_id_file_name),
        Rule("R-FILE-1", provenance.check_pruned_model_file),
        Rule("R-PROTO-1", provenance.check_protocol_content_hash),
        Rule("R-DATA-2", setups.check_dataset_checksum, "S1", severity="warning"),
        Rule("R-TARGET-1", targets.check_target_tolerance, "S1", severity="warning"),
        Rule("R-BASE-2", setups.check_base_model, "S2", severity="warning"),
        Rule("R-RETRAIN-2", setups.check_retraining_epochs, "S3.1", severity="warning"),
        Rule("R-RETRAIN-3", setups.check_retraining_recipe, "S3.2", severity="warning"),
        Rule("R-STAGE-1", setups.check_pruning_stage_epochs, "S4.1", severity="warning"),
        Rule("R-STAGE-2", setups.check_pruning_stage_lr, "S4.2", severity="warning"),
        Rule("R-STAGE-3", setups.check_pruning_stage_compute, "S4.1", severity="warning"),
        Rule("R-RETRAIN-4", scratch.check_retraining_override),
        Rule("R-CERT-1", provenance.check_certification),
        Rule("R-SX-1", scratch.check_scratch_budget),
    ]


def _tree_rules() -> list[Rule]:
    return [
        Rule("R-SEED-1", tree.check_seeds_distinct, scope="tree"),
        Rule("R-SEED-2", tree.check_seed_count, scope="tree", severity="warning"),
        Rule("R-PROTO-3", tree.check_protocol_versions, scope="tree", severity="warning"),
        Rule("R-PROTO-4", tree.check_protocol_contents, scope="tree"),
        Rule("R-BASE-3", tree.check_base_models, scope="tree", severity="warning"),
        Rule("R-BASE-4", tree.check_base_model_figures, scope="tree"),
        Rule("R-ID-3", tree.check_duplicate_run_ids, scope="tree"),
        Rule("R-EVID-1", evidence.check_copied_seeds, scope="tree"),
    ]


@hookimpl(tryfirst=True)  # the suite's own rules first, then plugins' (validate's order)
def register_rules() -> dict[str, Rule]:
    """Every rule of RULES.md, by id."""
    run = [Rule(i, None, scope="run", description=d) for i, d in _BY_CONSTRUCTION.items()]
    read = Rule("R-SCHEMA-1", None, scope="read", description=_READ)
    return {rule.id: rule for rule in (*run, read, *_file_rules(), *_tree_rules())}
