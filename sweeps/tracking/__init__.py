"""What people browse: the sweep's MLflow parent run and each trial's nested run (tags, params,
metrics, noise curves, models), and the MLflow UI launcher (`sweeps dashboard`)."""
