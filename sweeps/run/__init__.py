"""Execution: the service on Ray (run, resume, confirm, reconcile), Ray's start-up, the Tune
adapters over the search's decisions, the trainable each trial runs, the worker preload, and Ray
job submission."""
