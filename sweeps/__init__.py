"""sweeps: the sweep service (Ray Tune trials, Optuna multi-objective search, MLflow logging)."""
