#!/usr/bin/env bash
# Customer histories we did not write: the subscription simulator of the book "Fighting Churn
# with Data" (PyPI package fightchurn 1.2.0, module fightchurn.churnsim, "socialnet7" settings),
# run in memory by bench/fightchurn_history.py, then compared as bench/histories.sh compares
# (retainwise train --group --observation-date against LightGBM and XGBoost tuned on grouped CV,
# the same held-out customers).
#
# Usage: bench/fightchurn.sh [CUSTOMERS] [MONTHS] [SEED]   (default 500 12 11)
# VENV (default /work/fightchurn-venv) is made and filled from PyPI when absent: fightchurn
# without its pinned extras (its notebooks' plotting, database and packaging tools, none used
# here) and what the simulator imports. PROFILE as in bench/histories.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-500} months=${2:-12} seed=${3:-11}
venv=${VENV:-/work/fightchurn-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import fightchurn.churnsim.churnsim, lightgbm, xgboost, sklearn" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps fightchurn==1.2.0
  "$venv/bin/pip" install -q lightgbm==4.7.0 xgboost==3.2.0 scikit-learn==1.9.1 pandas \
    hydra-core omegaconf filelock python-dateutil joblib psycopg2-binary postgres
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" bench/fightchurn_history.py "$work/history.csv" "$customers" "$months" "$seed" 2>&1 \
  | grep -v "^Simulating" >&2
HISTORY_CSV="$work/history.csv" PYTHON="$venv/bin/python" bench/histories.sh
