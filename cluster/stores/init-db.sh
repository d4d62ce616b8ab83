#!/bin/sh
# Run once by the postgres image on an empty volume, as its superuser (`postgres`, whose password
# stays on this VM). Two roles, neither a superuser nor able to create roles or databases:
#   sweeps: owns the Optuna study's database only. Its password ($PGPASSWORD) reaches every node.
#   mlflow: owns MLflow's runs and its basic-auth users; its password stays with the MLflow server,
#           so a node's password cannot read or change MLflow's tables behind MLflow's auth.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v sweeps_pw="$SWEEPS_DB_PASSWORD" -v mlflow_pw="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE sweeps LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'sweeps_pw';
CREATE ROLE mlflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'mlflow_pw';
CREATE DATABASE optuna OWNER sweeps;
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
REVOKE ALL ON DATABASE optuna, mlflow, mlflow_auth FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;  -- the superuser's alone
SQL
