#!/usr/bin/env bash
# Scoring speed, side by side: retainwise `score_csv` with the top-3 drivers (the default),
# without (`--explain none`) and with every SHAP value (`--explain all`), each in its own process
# with its peak RSS; the parse-and-write limit of this machine measured on the same file; and the
# Python anchor (pandas + XGBoost 300 trees + TreeSHAP, ../shared/bench/python/score.py).
# See crates/retainwise-model/benches/score.rs for what each figure is.
#
# Usage: bench/score.sh [ROWS]   (default 1000000; the file is made under $TMPDIR, then removed)
# Needs: a Python with pandas and xgboost for the file and the anchor (PYTHON=..., default
# /work/peers-venv/bin/python when present, else /tmp/anchor/bin/python). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
py=${PYTHON:-}
if [ -z "$py" ]; then
  for p in /work/peers-venv/bin/python /tmp/anchor/bin/python; do
    if [ -x "$p" ]; then py=$p; break; fi
  done
fi
echo "== $(date -u +%FT%TZ) uptime: $(uptime)"
cargo bench --workspace --bench score -- --rows "$rows" ${py:+--python "$py"}
echo "== $(date -u +%FT%TZ) uptime: $(uptime)"
