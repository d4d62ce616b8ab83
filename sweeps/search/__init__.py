"""Decisions: what to try next and when to stop, the same for a real sweep and for the replay
simulator. The search space grammar, Optuna's samplers, the sweep's study and its plan (baselines,
search, seed replicates), early stopping (ASHA, MO-ASHA), the Pareto math, the replicate
statistics, the trial's report, and the wrappers around Optuna's private API. No Ray, MLflow or
spec import: the study takes the typed spec it is given.
"""
