# The MLflow tracking server of the stores VM: MLflow (the lock's version), the PostgreSQL driver,
# and the clients for an S3 or GCS artifact store, every one pinned. It runs as an unprivileged user.
# Pin the base by digest where you build (docker buildx imagetools inspect ghcr.io/mlflow/mlflow:v3.17.2):
#   docker compose build --build-arg MLFLOW_IMAGE=ghcr.io/mlflow/mlflow:v3.17.2@sha256:...
ARG MLFLOW_IMAGE=ghcr.io/mlflow/mlflow:v3.17.2
FROM ${MLFLOW_IMAGE}
RUN pip install --no-cache-dir psycopg2-binary==2.9.13 boto3==1.44.8 google-cloud-storage==3.17.1 \
    && useradd --create-home --uid 1000 --user-group mlflow
USER 1000:1000
ENV MLFLOW_DISABLE_TELEMETRY=true
