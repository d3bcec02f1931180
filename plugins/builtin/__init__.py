"""The built-in pruning methods, each registered through the ``pruning_suite`` entry-point group."""
