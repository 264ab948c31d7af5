#!/usr/bin/env bash
# Starts the real services the tests use, on loopback and free ports, and exports their URLs.
# Source it (`. scripts/test-services.sh`); it stops everything when the sourcing shell exits.
#
#   RETAINWISE_TEST_POSTGRES_URL  a throwaway PostgreSQL cluster (initdb + pg_ctl, fsync off)
#
# Without these URLs the Postgres tests print SKIPPED and pass vacuously, so CI always sources this.

rw_services_dir="$(mktemp -d /tmp/retainwise-services.XXXXXX)"
chmod 755 "$rw_services_dir"

rw_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

rw_pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ]; then
    echo "== installing PostgreSQL (Debian package)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  fi
  echo "$bin"
}

rw_as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

rw_start_postgres() {
  local bin port data
  bin="$(rw_pg_bin)"
  [ -x "$bin/initdb" ] || { echo "PostgreSQL could not be installed" >&2; return 1; }
  port="$(rw_free_port)"
  data="$rw_services_dir/pg"
  mkdir -p "$data" && { [ "$(id -u)" != 0 ] || chown postgres "$data"; }
  rw_as_postgres "$bin/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 >"$rw_services_dir/initdb.log" 2>&1 \
    || { cat "$rw_services_dir/initdb.log" >&2; return 1; }
  rw_as_postgres "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    >/dev/null || { cat "$data/server.log" >&2; return 1; }
  RW_PG_CTL="$bin/pg_ctl"
  RW_PG_DATA="$data/db"
  export RETAINWISE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

rw_stop_services() {
  if [ -n "${RW_PG_CTL:-}" ]; then
    rw_as_postgres "$RW_PG_CTL" -D "$RW_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$rw_services_dir"
}

trap rw_stop_services EXIT
rw_start_postgres
