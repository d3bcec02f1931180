"""Comparison protocols: the pydantic spec, the shipped protocol files, the ratio language, LR schedules."""
