#!/usr/bin/env bash
# Install PostgreSQL 15 from Debian for the `postgres` tests (idempotent, fast when present).
# The tests start their own throw-away cluster on a free loopback port (tests/services/postgres.py);
# as root, that cluster runs as the `postgres` system user which this package creates.
set -euo pipefail
PG_BIN=/usr/lib/postgresql/15/bin
if [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/postgres" ] && getent passwd postgres >/dev/null; then
    echo "postgresql-15 present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# No system cluster on port 5432 is needed: keep the package from creating and starting one.
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/huntlab.conf >/dev/null
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
"$PG_BIN/initdb" --version
