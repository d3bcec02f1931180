"""JSON Schemas generated from the pydantic models; see ``python -m pruning_suite.record.schema``."""
