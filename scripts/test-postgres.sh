#!/usr/bin/env bash
# Starts a PostgreSQL for the tests on loopback (Debian's packaged server, installed when missing
# and apt-get can run), creates the role and database the tests use, and prints the URL to export:
#   export BASTION_TEST_POSTGRES_URL=$(scripts/test-postgres.sh)
# Idempotent: a running server, an existing role or database are left as they are.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
  $SUDO pg_createcluster "$version" main >&2
fi
# Loopback only. Written to conf.d (Debian's postgresql.conf includes it) rather than through
# pg_conftool, which writes an address unquoted and so makes the file unreadable.
# An earlier version of this script left that unquoted line in postgresql.conf; it is commented out.
$SUDO sed -i "s/^listen_addresses = 127\.0\.0\.1\([^0-9.].*\)\?$/#&/" "/etc/postgresql/$version/main/postgresql.conf"
$SUDO mkdir -p "/etc/postgresql/$version/main/conf.d"
echo "listen_addresses = '127.0.0.1'" | $SUDO tee "/etc/postgresql/$version/main/conf.d/bastion-loopback.conf" >/dev/null
if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
  $SUDO pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')
for _ in $(seq 1 30); do
  pg_isready -q -p "$port" -h 127.0.0.1 && break
  sleep 1
done
psql_as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- psql -p "$port" -qtAX "$@"; else sudo -u postgres psql -p "$port" -qtAX "$@"; fi; }
if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'bastion'")" != "1" ]; then
  psql_as_postgres -c "CREATE ROLE bastion LOGIN PASSWORD 'bastion' CREATEDB" >&2
fi
if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'bastion_test'")" != "1" ]; then
  psql_as_postgres -c "CREATE DATABASE bastion_test OWNER bastion" >&2
fi
echo "postgres://bastion:bastion@127.0.0.1:$port/bastion_test"
