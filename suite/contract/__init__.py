"""The method contract: what a pruning method is, the pluggy hook specifications, the plugin manager."""
