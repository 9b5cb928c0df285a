#!/usr/bin/env bash
# A local PostgreSQL for development: scripts/postgres.sh start|stop|status
#   HUNTLAB_PG_DIR  cluster folder   (default: /tmp/huntlab-pg-dev)
#   HUNTLAB_PG_PORT loopback port    (default: 55432)
# The role `huntlab` gets a random password, kept in $HUNTLAB_PG_DIR/password (mode 600).
# Under root the cluster runs as the `postgres` system user (initdb refuses root).
set -euo pipefail
PG_BIN=${HUNTLAB_PG_BIN:-/usr/lib/postgresql/15/bin}
DIR=${HUNTLAB_PG_DIR:-/tmp/huntlab-pg-dev}
PORT=${HUNTLAB_PG_PORT:-55432}
DATA="$DIR/data"

[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL 15 in $PG_BIN: run bash .ci/setup-postgres.sh" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    if [ ! -s "$DIR/password" ]; then
        head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DIR/password"
        chmod 600 "$DIR/password"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/password"
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        as_owner "$PG_BIN/initdb" -D "$DATA" -U huntlab --pwfile="$DIR/password" \
            --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DATA" start
    cat <<MSG
PostgreSQL listens on 127.0.0.1:$PORT (user huntlab, database postgres).
In huntlab.toml:
  [connections.dev]
  type = "postgres"
  host = "127.0.0.1"
  port = $PORT
  user = "huntlab"
  password_file = "$DIR/password"
MSG
}

stop() {
    if [ -f "$DATA/postmaster.pid" ]; then as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) as_owner "$PG_BIN/pg_ctl" -D "$DATA" status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
