# The MLflow tracking server of the stores VM: MLflow (the lock's version), the PostgreSQL driver,
# and the clients for an S3 or GCS artifact store.
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.13 boto3 google-cloud-storage
