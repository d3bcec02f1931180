"""Comparison-protocol files shipped with the suite (one TOML file per protocol)."""
