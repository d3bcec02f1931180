"""Studies: the paper's findings rerun as sets of runs, with their verdicts, tables and figures."""
