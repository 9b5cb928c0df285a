#!/usr/bin/env bash
# Spark engine prerequisites: a Java 17 runtime for pyspark (installed from Debian if missing).
# No extra jars are needed: managed Delta tables are read by Spark as the Parquet files of a
# Delta snapshot listed by the `deltalake` package, and written by that package (see
# docs/architecture.md, "Apache Spark engine"). Idempotent and fast when Java is present.
set -euo pipefail
cd "$(dirname "$0")/.."

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}

if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  echo "installing a Java 17 runtime for Spark"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
echo "java $(java_major) for Spark: $(command -v java)"

# JDBC driver for PostgreSQL datasets on Spark, resolved from Maven Central into .cache/jars
# (passed to every Spark session as spark.jars; nothing is downloaded at run time).
PG_JDBC=org.postgresql:postgresql:42.7.14
if [ ! -e .cache/jars/postgresql-42.7.14.jar ]; then
  command -v mvn >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null; }
  mkdir -p .cache/jars
  mvn -B -q dependency:copy -Dartifact="$PG_JDBC" -DoutputDirectory="$PWD/.cache/jars"
fi
ls .cache/jars

if [ -x .venv/bin/python ]; then
  .venv/bin/python -c "import pyspark; print('pyspark', pyspark.__version__)"
fi
