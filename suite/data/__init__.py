"""Datasets of the comparison protocols: arrays on the device, IDX, CIFAR, image folders; checksums and splits."""
