#!/usr/bin/env bash
# Smoke test of the container image through podman (runc, host network):
#   1. `serve` in a container: /health, /__version, the Telco file uploaded from outside, the
#      scored CSV downloaded and checked (one scored row per customer), a clean stop.
#   2. the fleet in containers against the services of scripts/test-services.sh (PostgreSQL,
#      SeaweedFS S3, moto SQS): a `worker --no-migrate` refused before `migrate`, `migrate`,
#      `queue setup`, then `api` and `worker` with --no-migrate, the database URL from a
#      mounted secret file (RETAINWISE_DATABASE_URL_FILE); a file uploaded to the api is scored
#      by the worker; the worker prints CloudWatch EMF queue metrics; SIGTERM stops it cleanly.
#
#   scripts/image-smoke.sh IMAGE      (sources scripts/test-services.sh itself when its
#                                      variables are not set; scores RETAINWISE_TELCO_CSV or
#                                      ../shared/data/telco-customer-churn.csv, else the
#                                      5-row sample, with a warning)
set -euo pipefail
cd "$(dirname "$0")/.."

image="${1:?usage: scripts/image-smoke.sh IMAGE}"
telco="${RETAINWISE_TELCO_CSV:-$(pwd)/../shared/data/telco-customer-churn.csv}"
if [ ! -f "$telco" ]; then
  echo "*** WARNING: $telco is missing: the image smoke test scores the 5-row sample instead ***" >&2
  telco="$(pwd)/crates/retainwise/assets/sample-telecom.csv"
fi
if [ -z "${RETAINWISE_TEST_POSTGRES_URL:-}" ] || [ -z "${RETAINWISE_TEST_SQS_ENDPOINT:-}" ]; then
  . scripts/test-services.sh
fi

run=(podman --runtime runc run --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
tag="rw-smoke-$$"
work="$(mktemp -d /tmp/retainwise-smoke.XXXXXX)"
containers=()
cleanup() {
  for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v if v is not None else "")' "$1"; }
wait_http() { # wait_http URL SECONDS
  local i
  for i in $(seq 1 $(( $2 * 4 ))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.25; done
  echo "FAIL: $1 did not answer within $2 s" >&2; return 1
}
fail() { echo "FAIL: $*" >&2; for c in "${containers[@]}"; do echo "--- logs of $c" >&2; podman logs "$c" 2>&1 | tail -n 30 >&2; done; exit 1; }

# upload_and_check BASE NAME: the Telco file through BASE, scored, downloaded, checked.
upload_and_check() {
  local base="$1" name="$2" id status i rows scored
  id=$(curl -fsS -F "file=@$telco;filename=telco.csv" "$base/api/csv" | json prediction_id) \
    || fail "$name: upload refused"
  for i in $(seq 1 600); do
    status=$(curl -fsS "$base/api/predictions/$id" | json prediction.status)
    case "$status" in COMPLETED|FAILED) break ;; esac
    sleep 0.5
  done
  [ "$status" = COMPLETED ] || fail "$name: prediction $id ended $status"
  curl -fsS -o "$work/$name-results.csv" "$base/api/predictions/$id/results" || fail "$name: no results"
  rows=$(python3 -c 'import csv,sys; print(sum(1 for _ in csv.DictReader(open(sys.argv[1], newline=""))))' "$telco")
  scored=$(python3 - "$work/$name-results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
probs = [float(r["churn_probability"]) for r in rows]
assert all(0.0 <= p <= 1.0 for p in probs), "a probability outside 0..1"
assert len({r["customer_id"] for r in rows}) == len(rows), "a customer scored twice"
print(len(rows))
PY
) || fail "$name: the results do not check"
  [ "$scored" = "$rows" ] || fail "$name: $scored scored rows for $rows customers"
  echo "ok:   $name: prediction $id COMPLETED, $scored of $rows customers scored (churn_probability in 0..1)"
}

# ---------------------------------------------------------------- 1. serve
started=$(date +%s)
port=$(free_port)
c="$tag-serve"; containers+=("$c")
"${run[@]}" -d --name "$c" -e RETAINWISE_BIND="127.0.0.1:$port" "$image" >/dev/null
base="http://127.0.0.1:$port"
wait_http "$base/health" 60 || fail "serve did not start"
version=$(curl -fsS "$base/__version")
echo "ok:   serve: /__version $version"
if [ -n "${RETAINWISE_GIT_COMMIT:-}" ]; then
  [ "$(echo "$version" | json git_commit)" = "$RETAINWISE_GIT_COMMIT" ] || fail "/__version does not name commit $RETAINWISE_GIT_COMMIT"
fi
upload_and_check "$base" serve
podman stop -t 30 "$c" >/dev/null
[ "$(podman wait "$c")" = 0 ] || fail "serve did not exit 0 on SIGTERM"
echo "ok:   serve: stopped cleanly; part 1 took $(( $(date +%s) - started )) s"

# ---------------------------------------------------------------- 2. the fleet
started=$(date +%s)
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
db="rw_image_smoke_$$"
"$pg_bin/psql" -q "$RETAINWISE_TEST_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
printf '%s/%s\n' "${RETAINWISE_TEST_POSTGRES_URL%/*}" "$db" >"$work/database-url"
chmod 644 "$work/database-url"
secret=(-v "$work/database-url:/run/secrets/database-url:ro" -e RETAINWISE_DATABASE_URL_FILE=/run/secrets/database-url)
aws=(-e AWS_ENDPOINT_URL_S3 -e AWS_ENDPOINT_URL_SQS -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION
     -e RETAINWISE_STORAGE_URL="s3://$RETAINWISE_TEST_S3_BUCKET/$tag")

if out=$("${run[@]}" --rm "${secret[@]}" "$image" worker --no-migrate 2>&1); then
  fail "a worker with --no-migrate started on an empty database"
fi
grep -q "retainwise migrate" <<<"$out" || fail "the refusal does not say to run migrate: $out"
echo "ok:   fleet: worker --no-migrate refused before migrate"
"${run[@]}" --rm "${secret[@]}" "$image" migrate | sed 's/^/      /'
queue=$("${run[@]}" --rm "${aws[@]}" "$image" queue setup --name "$tag" | sed -n 's/^set RETAINWISE_QUEUE_URL=//p')
[ -n "$queue" ] || fail "queue setup printed no URL"
echo "ok:   fleet: migrate and queue setup ($queue)"

fleet=("${secret[@]}" "${aws[@]}" -e RETAINWISE_QUEUE_URL="$queue" -e RETAINWISE_NO_MIGRATE=true)
port=$(free_port)
c="$tag-api"; containers+=("$c")
"${run[@]}" -d --name "$c" "${fleet[@]}" -e RETAINWISE_BIND="127.0.0.1:$port" "$image" api >/dev/null
w="$tag-worker"; containers+=("$w")
"${run[@]}" -d --name "$w" "${fleet[@]}" -e RETAINWISE_EMF_INTERVAL_SECS=2 "$image" worker >/dev/null
base="http://127.0.0.1:$port"
wait_http "$base/ready" 60 || fail "api did not become ready"
upload_and_check "$base" fleet
sleep 3
# The log is read whole first: with pipefail, `grep -q` stopping at its first match could make
# `podman logs` die of SIGPIPE and fail the pipeline although the line is there.
worker_log="$(podman logs "$w" 2>/dev/null)"
grep -q '"CloudWatchMetrics"' <<<"$worker_log" || fail "the worker printed no EMF line"
echo "ok:   fleet: the worker prints CloudWatch EMF queue metrics"
podman stop -t 60 "$w" >/dev/null
[ "$(podman wait "$w")" = 0 ] || fail "the worker did not exit 0 on SIGTERM"
worker_log="$(podman logs "$w" 2>&1)"
grep -q "1 completed" <<<"$worker_log" || fail "the worker's summary does not count the job"
podman stop -t 30 "$c" >/dev/null
echo "ok:   fleet: SIGTERM stopped the worker cleanly; part 2 took $(( $(date +%s) - started )) s"
echo "image smoke test: passed ($image, $(( $(podman image inspect "$image" --format '{{.Size}}') / 1024 / 1024 )) MiB)"
