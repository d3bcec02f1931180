"""The main job: one run from base model through pruning and retraining to a submission; base-model cache and zoo."""
