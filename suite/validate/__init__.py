"""Validating submission files and folders against the schema and the fairness rules (torch-free)."""
