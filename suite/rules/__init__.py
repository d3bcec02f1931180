"""The fairness rules of Wang et al. (arXiv 2301.05219) as code: comparison setups, certification, budgets."""
