#!/usr/bin/env bash
# The failure drill at full size, rerunnable by anyone:
#
#   scripts/failure-drill.sh                # 200 uploads (DRILL_UPLOADS=N to change)
#
# Builds the release binary, starts a throwaway PostgreSQL and SeaweedFS S3 server
# (scripts/test-services.sh), runs one `retainwise api` and three `retainwise worker` processes
# on them, and then, in four phases:
#   1 crash   DRILL_UPLOADS uploads; worker0 gets SIGKILL while it holds a job, worker1 SIGTERM
#             while it holds one: every prediction COMPLETED exactly once, each result object
#             written once, byte-equal to `retainwise predict` of its file, nothing in flight;
#   2 db      PostgreSQL stopped (fast shutdown) mid-run and started again on the same port:
#             the workers reconnect and finish, none exits, none spins;
#   3 s3      the SeaweedFS process stopped mid-run and started again on the same port: jobs
#             fail, go back to the queue with a backoff and complete once it is back;
#   4 dlq     S3 down for longer than the retries last: the jobs are dead-lettered after max
#             receives with their last error (predictions FAILED); S3 back, `retainwise queue
#             redrive --all` completes them;
# and prints a pass/fail table. Exit status 0 only when every check passes.
#
# "Written once" is measured by the store itself: the drill's bucket has S3 versioning on, so
# every write of a key is a version, and each result key must have exactly one.
# Logs and inputs stay in $DRILL_DIR (printed) for a person to read.
#
# Settings: DRILL_BIN (a retainwise binary to use instead of building one), DRILL_UPLOADS (200), DRILL_VISIBILITY_SECS (10: how soon a killed worker's job comes
# back), DRILL_MAX_RECEIVES (3, the default: dead-letter at the third receive).

set -uo pipefail
cd "$(dirname "$0")/.."

UPLOADS="${DRILL_UPLOADS:-200}"
VISIBILITY="${DRILL_VISIBILITY_SECS:-10}"
MAX_RECEIVES="${DRILL_MAX_RECEIVES:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

DRILL_DIR="$(mktemp -d /tmp/retainwise-drill.XXXXXX)"
if [ -n "${DRILL_BIN:-}" ]; then
  cp "$DRILL_BIN" "$DRILL_DIR/retainwise"  # a binary built already
else
  echo "== building the release binary"
  cargo build --release -p retainwise --bin retainwise || exit 1
  cp "$CARGO_TARGET_DIR/release/retainwise" "$DRILL_DIR/retainwise"
fi
BIN="$DRILL_DIR/retainwise"

. scripts/test-services.sh || exit 1
PSQL="$(rw_pg_bin)/psql"
DB_URL="${RETAINWISE_TEST_POSTGRES_URL%/*}/drill"
"$PSQL" -q "$RETAINWISE_TEST_POSTGRES_URL" -c "CREATE DATABASE drill" || exit 1
BUCKET="drill-$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
export DRILL_DIR BUCKET
python3 - <<'PY' || exit 1
import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
s3.create_bucket(Bucket=os.environ["BUCKET"])
s3.put_bucket_versioning(Bucket=os.environ["BUCKET"], VersioningConfiguration={"Status": "Enabled"})
PY

export RETAINWISE_DATABASE_URL="$DB_URL"
export RETAINWISE_STORAGE_URL="s3://$BUCKET/drill"
export RETAINWISE_DATA_DIR="$DRILL_DIR/data"
export RETAINWISE_VISIBILITY_TIMEOUT_SECS="$VISIBILITY"
export RETAINWISE_MAX_RECEIVES="$MAX_RECEIVES"
export RETAINWISE_MAX_ACTIVE_JOBS_PER_USER=100000 RETAINWISE_RATE_LIMIT_PER_MINUTE=10000000
export RETAINWISE_LOG_FORMAT=json RETAINWISE_LOG="info,sqlx=warn"
unset DATABASE_URL S3_BUCKET PREDICTIONS_BUCKET RETAINWISE_QUEUE_URL PREDICTIONS_QUEUE_URL ENABLE_SQS
echo "== drill folder $DRILL_DIR (logs, inputs, ids); bucket $BUCKET (versioned)"

RESULTS="$DRILL_DIR/table.txt"
: >"$RESULTS"
FAILED=0
# record PHASE CHECK OK(0/1) FIGURES
record() {
  local verdict=PASS
  if [ "$3" != 0 ]; then verdict=FAIL; FAILED=1; fi
  printf '%-6s %-62s %-4s %s\n' "$1" "$2" "$verdict" "$4" >>"$RESULTS"
  printf '   %-6s %-62s %-4s %s\n' "$1" "$2" "$verdict" "$4"
}

# ---- inputs: four synthetic Telco-schema files, and their offline scores ----
python3 - <<'PY'
import os, random
header = ("customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,"
          "InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,"
          "StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges")
yn, svc = ["Yes", "No"], ["Yes", "No", "No internet service"]
for k, n in enumerate([1000, 3000, 6000, 12000]):
    rng = random.Random(k)
    with open(os.path.join(os.environ["DRILL_DIR"], f"input{k}.csv"), "w") as f:
        f.write(header + "\n")
        for i in range(n):
            tenure = rng.randrange(73)
            monthly = 18.25 + rng.randrange(10000) / 100
            total = "" if tenure == 0 else f"{monthly * tenure:.2f}"
            f.write(",".join([f"{i:06d}-DRL{k}", rng.choice(["Female", "Male"]), str(rng.randrange(2)),
                rng.choice(yn), rng.choice(yn), str(tenure), rng.choice(yn),
                rng.choice(["Yes", "No", "No phone service"]), rng.choice(["DSL", "Fiber optic", "No"]),
                *[rng.choice(svc) for _ in range(6)],
                rng.choice(["Month-to-month", "One year", "Two year"]), rng.choice(yn),
                rng.choice(["Electronic check", "Mailed check", "Bank transfer (automatic)",
                            "Credit card (automatic)"]),
                f"{monthly:.2f}", total]) + "\n")
PY
for k in 0 1 2 3; do
  "$BIN" predict "$DRILL_DIR/input$k.csv" -o "$DRILL_DIR/offline$k.csv" 2>/dev/null || { echo "predict failed" >&2; exit 1; }
done

# ---- processes ----
declare -A PID
start_proc() { # NAME ROLE [ARGS…]
  local name="$1" role="$2"; shift 2
  "$BIN" "$role" "$@" >/dev/null 2>"$DRILL_DIR/$name.log" &
  PID[$name]=$!
}
stop_workers() { # SIGTERM every worker; appends "name:exit" to STOPPED
  local n
  for n in "${!PID[@]}"; do [ "$n" = api ] || kill -TERM "${PID[$n]}" 2>/dev/null; done
  for n in "${!PID[@]}"; do
    [ "$n" = api ] && continue
    wait "${PID[$n]}"; STOPPED="$STOPPED $n:$?"; unset "PID[$n]"
  done
}
STOPPED=""
start_workers() { # FIRST: three workers named workerFIRST…; waits until they are up
  local w i
  for w in $1 $(($1 + 1)) $(($1 + 2)); do start_proc "worker$w" worker --concurrency 2; done
  for i in $(seq 1 200); do
    local up=1
    for w in $1 $(($1 + 1)) $(($1 + 2)); do grep -q worker_startup "$DRILL_DIR/worker$w.log" || up=0; done
    [ "$up" = 1 ] && break
    sleep 0.1
  done
}
stop_all() {
  local n
  for n in "${!PID[@]}"; do kill -TERM "${PID[$n]}" 2>/dev/null; done
  for n in "${!PID[@]}"; do wait "${PID[$n]}" 2>/dev/null; done
}
trap 'stop_all; rw_stop_services' EXIT

export RETAINWISE_BIND=127.0.0.1:0
start_proc api api
for i in $(seq 1 200); do
  API="$(sed -n 's/^retainwise listening on //p' "$DRILL_DIR/api.log" | head -n 1)"
  [ -n "$API" ] && break
  sleep 0.1
done
[ -n "$API" ] || { cat "$DRILL_DIR/api.log"; exit 1; }
for w in 0 1 2; do start_proc "worker$w" worker --concurrency 2; done

# Prediction ids this worker's log shows started and not finished.
in_hand() {
  python3 - "$DRILL_DIR/$1.log" <<'PY'
import json, sys
open_ = set()
for line in open(sys.argv[1], errors="replace"):
    try:
        f = json.loads(line)["fields"]
    except Exception:
        continue
    pid, m = f.get("prediction_id"), f.get("message")
    if not pid:
        continue
    if m == "prediction_processing_started":
        open_.add(pid)
    elif m in ("prediction_processing_completed", "prediction_processing_failed", "message_processing_failed"):
        open_.discard(pid)
print(" ".join(sorted(open_)))
PY
}

upload_one() { # I PHASE → appends "id input phase" to ids.txt
  local k=$(($1 % 4)) id
  id="$(curl -s -F "file=@$DRILL_DIR/input$k.csv;filename=customers-$1.csv" "$API/api/csv" \
    | sed -n 's/.*"prediction_id":"\([0-9a-f-]*\)".*/\1/p')"
  [ -n "$id" ] || { echo "upload $1 refused" >&2; return 1; }
  echo "$id $k $2" >>"$DRILL_DIR/ids.txt"
}

upload_batch() { # FIRST COUNT PHASE: four uploads at a time, so a backlog builds up
  local i p pids=()
  for i in $(seq "$1" $(($1 + $2 - 1))); do
    upload_one "$i" "$3" &
    pids+=($!)
    if [ "${#pids[@]}" = 4 ]; then
      for p in "${pids[@]}"; do wait "$p"; done
      pids=()
    fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

sql() { "$PSQL" -qtAX "$DB_URL" -c "$1" 2>/dev/null; }

# Waits until no prediction of PHASE is QUEUED or RUNNING (or TIMEOUT s); prints the seconds.
wait_phase() {
  local phase="$1" timeout="$2" start open ids
  start=$(date +%s)
  ids="$(awk -v p="$phase" '$3 == p {printf "%s\x27%s\x27", (n++ ? "," : ""), $1}' "$DRILL_DIR/ids.txt")"
  while :; do
    open="$(sql "SELECT COUNT(*) FROM predictions WHERE id IN ($ids) AND status IN ('QUEUED','RUNNING')")"
    [ "$open" = 0 ] && break
    [ $(($(date +%s) - start)) -ge "$timeout" ] && break
    sleep 0.5
  done
  echo $(($(date +%s) - start))
}

count_status() { # PHASE STATUS
  local ids
  ids="$(awk -v p="$1" '$3 == p {printf "%s\x27%s\x27", (n++ ? "," : ""), $1}' "$DRILL_DIR/ids.txt")"
  sql "SELECT COUNT(*) FROM predictions WHERE id IN ($ids) AND status = '$2'"
}

# Checks every result of PHASE (or "all") against the store: one version per key, bytes equal
# to the offline output; and counts COMPLETED records per id in the workers' logs.
# Prints "versions_ok bytes_ok once_ok figures".
check_results() {
  python3 - "$1" <<'PY'
import glob, json, os, sys, boto3
phase, d = sys.argv[1], os.environ["DRILL_DIR"]
rows = [l.split() for l in open(os.path.join(d, "ids.txt"))]
rows = [r for r in rows if phase == "all" or r[2] == phase]
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
versions = {}
for page in s3.get_paginator("list_object_versions").paginate(Bucket=os.environ["BUCKET"], Prefix="drill/results/"):
    for v in page.get("Versions", []):
        versions[v["Key"]] = versions.get(v["Key"], 0) + 1
offline = [open(os.path.join(d, f"offline{k}.csv"), "rb").read() for k in range(4)]
completed = {}
for log in glob.glob(os.path.join(d, "worker*.log")):
    for line in open(log, errors="replace"):
        try:
            f = json.loads(line)["fields"]
        except Exception:
            continue
        if f.get("message") == "prediction_status_updated" and f.get("status") == "COMPLETED":
            completed[f["prediction_id"]] = completed.get(f["prediction_id"], 0) + 1
bad_versions = bad_bytes = bad_once = 0
for pid, k, _ in rows:
    key = f"drill/results/local/{pid}.csv"
    if versions.get(key) != 1:
        bad_versions += 1
    try:
        body = s3.get_object(Bucket=os.environ["BUCKET"], Key=key)["Body"].read()
    except Exception:
        body = None
    if body != offline[int(k)]:
        bad_bytes += 1
    if completed.get(pid) != 1:
        bad_once += 1
total_versions = sum(versions.get(f"drill/results/local/{r[0]}.csv", 0) for r in rows)
print(int(bad_versions > 0), int(bad_bytes > 0), int(bad_once > 0),
      f"{len(rows)} results, {total_versions} versions, {bad_bytes} differ, {bad_once} not completed exactly once")
PY
}

nothing_in_flight() {
  local q open
  q="$(sql "SELECT COUNT(*) FROM queue_messages")"
  open="$(sql "SELECT COUNT(*) FROM predictions WHERE status IN ('QUEUED','RUNNING')")"
  [ "$q" = 0 ] && [ "$open" = 0 ]
  echo "$? queue rows $q, open predictions $open"
}

# How many jobs the worker holds now: started minus finished, counted with grep (fast enough to
# catch a job of a few hundred milliseconds).
holding() {
  local log="$DRILL_DIR/$1.log" s f
  s=$(grep -c '"prediction_processing_started"' "$log")
  f=$(grep -cE '"(prediction_processing_completed|prediction_processing_failed|message_processing_failed)"' "$log")
  echo $((s - f))
}

wait_in_hand() { # WORKER TIMEOUT: returns once the worker holds a job (1 on timeout)
  local i
  for i in $(seq 1 $(($2 * 100))); do
    [ "$(holding "$1")" -gt 0 ] && return 0
    sleep 0.01
  done
  return 1
}

# ============ phase 1: SIGKILL and SIGTERM mid-run ============
echo "== phase 1: $UPLOADS uploads, 3 workers; SIGKILL worker0 and SIGTERM worker1 while they hold jobs"
T0=$(date +%s.%N)
# The uploads go on in the background; the signals land while the workers are busy.
upload_batch 0 "$UPLOADS" crash >"$DRILL_DIR/uploads.log" 2>&1 &
UPLOADER=$!
wait_in_hand worker0 120
kill -KILL "${PID[worker0]}"; wait "${PID[worker0]}" 2>/dev/null; unset 'PID[worker0]'
HELD0="$(in_hand worker0)"
wait_in_hand worker1 120
HELD1="$(in_hand worker1)"
kill -TERM "${PID[worker1]}"
TERM_AT=$(date +%s.%N)
wait "${PID[worker1]}"; TERM_RC=$?; unset 'PID[worker1]'
TERM_SECS=$(python3 -c "import time; print(f'{time.time() - $TERM_AT:.1f}')")
LEFT1="$(in_hand worker1)"
wait "$UPLOADER"
N_UP=$(awk '$3 == "crash"' "$DRILL_DIR/ids.txt" | wc -l)
record crash "$UPLOADS uploads accepted (202)" "$([ "$N_UP" = "$UPLOADS" ]; echo $?)" "$N_UP prediction ids"
SECS=$(wait_phase crash 900)
WALL=$(python3 -c "import time; print(f'{time.time() - $T0:.1f}')")
N_DONE=$(count_status crash COMPLETED)
record crash "all $UPLOADS predictions COMPLETED" "$([ "$N_DONE" = "$UPLOADS" ]; echo $?)" "$N_DONE/$UPLOADS in ${WALL}s wall"
record crash "SIGTERM: worker1 exits 0 with nothing left in hand" "$([ "$TERM_RC" = 0 ] && [ -z "$LEFT1" ] && grep -q worker_shutdown "$DRILL_DIR/worker1.log"; echo $?)" "exit $TERM_RC after ${TERM_SECS}s, held [$HELD1]"
RERUN=0
for id in $HELD0; do
  a="$(sql "SELECT attempt FROM predictions WHERE id = '$id' AND status = 'COMPLETED'")"
  [ -n "$a" ] && [ "$a" -ge 2 ] && RERUN=$((RERUN + 1))
done
record crash "SIGKILL: the killed worker's jobs run again and complete" "$([ "$RERUN" -ge 1 ]; echo $?)" "$RERUN of $(echo $HELD0 | wc -w) held at the kill completed at attempt >= 2"
read -r V B O FIG <<<"$(check_results crash)"
record crash "each result written once (S3 versions per key = 1)" "$V" "$FIG"
record crash "results byte-equal to retainwise predict" "$B" ""
record crash "COMPLETED recorded exactly once per prediction (logs)" "$O" ""
read -r R FIG <<<"$(nothing_in_flight)"
record crash "nothing in flight" "$R" "$FIG"

# ============ phase 2: PostgreSQL restart ============
start_proc worker3 worker --concurrency 2
start_proc worker4 worker --concurrency 2
for i in $(seq 1 100); do grep -q worker_startup "$DRILL_DIR/worker3.log" && grep -q worker_startup "$DRILL_DIR/worker4.log" && break; sleep 0.1; done
N2=60
echo "== phase 2: $N2 uploads, 3 workers; PostgreSQL stopped for 5 s mid-run"
upload_batch 1000 $N2 db || exit 1
wait_in_hand worker3 60
T0=$(date +%s.%N)
rw_pg_restart 5
PG_DOWN=$(python3 -c "import time; print(f'{time.time() - $T0:.1f}')")
upload_one 2000 db; UP_AFTER=$?  # the API reconnects too
SECS=$(wait_phase db 600)
record db "the API accepts an upload right after the restart" "$UP_AFTER" ""
N_ALL=$(awk '$3 == "db"' "$DRILL_DIR/ids.txt" | wc -l)
N_DONE=$(count_status db COMPLETED)
record db "all predictions COMPLETED after the restart" "$([ "$N_DONE" = "$N_ALL" ]; echo $?)" "$N_DONE/$N_ALL, Postgres down ${PG_DOWN}s, done ${SECS}s after"
ALIVE=0; SPIN=""
for w in worker2 worker3 worker4; do
  kill -0 "${PID[$w]}" 2>/dev/null && ALIVE=$((ALIVE + 1))
  SPIN="$SPIN $w:$(grep -c '"worker_loop_error"' "$DRILL_DIR/$w.log")"
done
ERRS=$(cat "$DRILL_DIR"/worker{2,3,4}.log | grep -c '"level":"\(ERROR\|WARN\)"')
record db "workers stay up (3 of 3) and log the outage" "$([ "$ALIVE" = 3 ] && [ "$ERRS" -gt 0 ]; echo $?)" "$ALIVE alive, $ERRS error/warn lines"
MAXSPIN=$(echo "$SPIN" | tr ' ' '\n' | sed -n 's/.*://p' | sort -n | tail -n 1)
record db "no hot loop: receive errors per worker <= 40" "$([ "${MAXSPIN:-0}" -le 40 ]; echo $?)" "receive errors:$SPIN"
read -r V B O FIG <<<"$(check_results db)"
record db "each result written once, byte-equal, completed once" "$([ "$V$B$O" = 000 ]; echo $?)" "$FIG"
read -r R FIG <<<"$(nothing_in_flight)"
record db "nothing in flight" "$R" "$FIG"

# ============ phase 3: S3 unreachable for a while ============
# The workers are stopped (SIGTERM) while the batch is uploaded, so that every job meets the
# outage: S3 goes down, new workers start on the backlog, S3 comes back 9 s later.
stop_workers
N3=40
echo "== phase 3: $N3 uploads queued; SeaweedFS stopped, 3 workers started, SeaweedFS started again 9 s later"
upload_batch 3000 $N3 s3 || exit 1
rw_s3_down
T0=$(date +%s.%N)
start_workers 5
sleep 9  # longer than the S3 client's own 5 s of retries, so the jobs go back to the queue
rw_s3_up
S3_DOWN=$(python3 -c "import time; print(f'{time.time() - $T0:.1f}')")
SECS=$(wait_phase s3 600)
N_DONE=$(count_status s3 COMPLETED)
IDS3="$(awk '$3 == "s3" {printf "%s\x27%s\x27", (n++ ? "," : ""), $1}' "$DRILL_DIR/ids.txt")"
RETRIED=$(sql "SELECT COUNT(*) FROM predictions WHERE id IN ($IDS3) AND attempt >= 2")
MAXATT=$(sql "SELECT MAX(attempt) FROM predictions WHERE id IN ($IDS3)")
STORAGE_ERRS=$(cat "$DRILL_DIR"/worker{5,6,7}.log | grep '"message_processing_failed"' | grep -c 'object storage')
record s3 "all predictions COMPLETED once S3 is back" "$([ "$N_DONE" = "$N3" ]; echo $?)" "$N_DONE/$N3, workers saw S3 down ${S3_DOWN}s, done ${SECS}s after"
record s3 "jobs retried with backoff (attempt >= 2), none dead" "$([ "$RETRIED" -ge 1 ] && [ "$(sql "SELECT COUNT(*) FROM queue_messages WHERE dead_at IS NOT NULL")" = 0 ]; echo $?)" "$RETRIED retried (max attempt $MAXATT), $STORAGE_ERRS storage errors logged"
read -r V B O FIG <<<"$(check_results s3)"
record s3 "each result written once, byte-equal, completed once" "$([ "$V$B$O" = 000 ]; echo $?)" "$FIG"
read -r R FIG <<<"$(nothing_in_flight)"
record s3 "nothing in flight" "$R" "$FIG"

# ============ phase 4: S3 down for good → dead-letter → redrive ============
stop_workers
N4=8
echo "== phase 4: $N4 uploads queued; SeaweedFS stopped until they are dead-lettered, then started and redriven"
upload_batch 4000 $N4 dlq || exit 1
rw_s3_down
start_workers 8
T0=$(date +%s)
IDS4="$(awk '$3 == "dlq" {printf "%s\x27%s\x27", (n++ ? "," : ""), $1}' "$DRILL_DIR/ids.txt")"
while :; do
  DEAD=$(sql "SELECT COUNT(*) FROM predictions WHERE id IN ($IDS4) AND status = 'FAILED' AND error_message LIKE 'dead-lettered:%'")
  OPEN=$(sql "SELECT COUNT(*) FROM predictions WHERE id IN ($IDS4) AND status IN ('QUEUED','RUNNING')")
  [ "$OPEN" = 0 ] && break
  [ $(($(date +%s) - T0)) -ge 300 ] && break
  sleep 1
done
DEAD_SECS=$(($(date +%s) - T0))
QDEAD=$("$BIN" queue stats 2>/dev/null | sed -n 's/^dead: *//p')
SAMPLE_ERR="$(sql "SELECT error_message FROM predictions WHERE id IN ($IDS4) AND status = 'FAILED' LIMIT 1" | cut -c1-110)"
LISTED=$("$BIN" queue dead 2>/dev/null | grep -c 'receives=')
record dlq "all dead-lettered after max receives, predictions FAILED" "$([ "$DEAD" = "$N4" ] && [ "$QDEAD" = "$N4" ]; echo $?)" "$DEAD/$N4 FAILED, queue dead $QDEAD, after ${DEAD_SECS}s"
record dlq "'queue dead' lists them with the last error" "$([ "$LISTED" = "$N4" ] && "$BIN" queue dead 2>/dev/null | grep -q 'error=.*object storage'; echo $?)" "$SAMPLE_ERR…"
rw_s3_up
REDRIVE="$("$BIN" queue redrive --all 2>/dev/null)"
SECS=$(wait_phase dlq 300)
N_DONE=$(count_status dlq COMPLETED)
record dlq "redrive --all completes them once S3 is back" "$([ "$N_DONE" = "$N4" ]; echo $?)" "$REDRIVE; $N_DONE/$N4 COMPLETED ${SECS}s after"
read -r V B O FIG <<<"$(check_results dlq)"
record dlq "each result written once, byte-equal, completed once" "$([ "$V$B$O" = 000 ]; echo $?)" "$FIG"

# ============ end: every result, and a clean stop ============
read -r V B O FIG <<<"$(check_results all)"
record all "every result: one version, byte-equal, completed once" "$([ "$V$B$O" = 000 ]; echo $?)" "$FIG"
read -r R FIG <<<"$(nothing_in_flight)"
record all "nothing in flight" "$R" "$FIG"
stop_workers
kill -TERM "${PID[api]}"; wait "${PID[api]}"; STOPPED="$STOPPED api:$?"; PID=()
record all "SIGTERM: every process stopped exits 0" "$(echo "$STOPPED" | grep -q ':[1-9]'; [ $? = 1 ]; echo $?)" "$STOPPED"

echo
echo "== failure drill: $UPLOADS + $N2 + 1 + $N3 + $N4 uploads, release binary, Postgres + SeaweedFS S3"
printf '%-6s %-62s %-4s %s\n' PHASE CHECK "" FIGURES
cat "$RESULTS"
if [ "$FAILED" = 0 ]; then echo "== PASS (logs in $DRILL_DIR)"; else echo "== FAIL (logs in $DRILL_DIR)"; fi
exit "$FAILED"
