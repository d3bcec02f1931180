"""Ranking tables and figures computed from submission files."""
