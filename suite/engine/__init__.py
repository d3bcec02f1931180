"""Models, structured and unstructured pruning, measurement, checkpoints, the training loop, trainability."""
