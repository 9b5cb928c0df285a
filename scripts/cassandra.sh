#!/usr/bin/env bash
# Start, stop or check a single Cassandra node on 127.0.0.1 for development (folder .cache/cassandra/node).
# Usage: scripts/cassandra.sh start|stop|status   (run .ci/setup-cassandra.sh once first)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m tests.services.cassandra_node "${1:-status}"
