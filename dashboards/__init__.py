"""dashboards: sweep reports, plots and the MLflow UI launcher."""
