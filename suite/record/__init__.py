"""The record of a run: submission models, generated JSON Schemas, safe JSON I/O."""
