-- Run once by the postgres image on an empty volume (POSTGRES_DB creates `optuna`).
-- MLflow's runs, and the users and permissions of its basic-auth app.
CREATE DATABASE mlflow OWNER sweeps;
CREATE DATABASE mlflow_auth OWNER sweeps;
