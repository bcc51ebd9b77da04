"""Everything Optuna: objective, pruner, storage, reports."""
