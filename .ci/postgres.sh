#!/usr/bin/env bash
# Installs (if needed) and starts a throwaway PostgreSQL server on 127.0.0.1:55432.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
PGDATA=${PGDATA_DIR:-/tmp/hepablate-pg}
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  rm -rf "$PGDATA"; mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"
  su postgres -c "$PGBIN/initdb -D $PGDATA -A trust -U postgres" >/dev/null
fi
if ! su postgres -c "$PGBIN/pg_ctl -D $PGDATA status" >/dev/null 2>&1; then
  su postgres -c "$PGBIN/pg_ctl -D $PGDATA -o '-p 55432 -k /tmp -c listen_addresses=127.0.0.1' -l $PGDATA/log -w start" >/dev/null
fi
psql -h 127.0.0.1 -p 55432 -U postgres -tc "SELECT 1 FROM pg_roles WHERE rolname='hepablate'" | grep -q 1 \
  || psql -h 127.0.0.1 -p 55432 -U postgres -c "CREATE ROLE hepablate LOGIN PASSWORD 'hepablate' CREATEDB" >/dev/null
psql -h 127.0.0.1 -p 55432 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='hepablate_test'" | grep -q 1 \
  || psql -h 127.0.0.1 -p 55432 -U postgres -c "CREATE DATABASE hepablate_test OWNER hepablate" >/dev/null
echo "postgres ready on 127.0.0.1:55432"
