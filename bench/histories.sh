#!/usr/bin/env bash
# Customer histories, side by side: retainwise `train --group --observation-date` against tuned LightGBM and XGBoost
# with customer-grouped CV (bench/histories_peers.py), on the same synthetic history file
# (retainwise_model::histories), the same customers held out.
#
# Usage: bench/histories.sh [CUSTOMERS] [MONTHS] [SEED]   (default 3000 12 11)
# Needs: a Python with lightgbm, xgboost, scikit-learn and pandas (PYTHON=..., default python3).
# HISTORY_CSV=FILE benchmarks that file instead of a generated one (see bench/fightchurn.sh).
# PROFILE=dev uses the debug build (the model crate is optimised there too; the figures are
# about accuracy, not speed).
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-3000} months=${2:-12} seed=${3:-11}
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
profile=${PROFILE:-release}
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cargo build --workspace --profile "$profile" --quiet --bin retainwise --examples
if [ -n "${HISTORY_CSV:-}" ]; then
  # A history file made elsewhere (bench/fightchurn.sh), in the same columns' roles: customer_id
  # (a letter and a number), observation_date, churned_next_month.
  cp "$HISTORY_CSV" "$work/all.csv"
else
  "target/$dir/examples/histories" "$customers" "$months" "$seed" > "$work/all.csv"
fi
echo "== history file: $(($(wc -l < "$work/all.csv") - 1)) rows, $(grep -c ',Yes$' "$work/all.csv") churned next month"
# Four customers in five learn, the fifth is held out.
"$py" - "$work" <<'PY'
import csv, sys
w = sys.argv[1]
rows = list(csv.reader(open(f"{w}/all.csv")))
head, body = rows[0], rows[1:]
for name, keep in [("train", lambda n: n % 5 != 0), ("test", lambda n: n % 5 == 0)]:
    with open(f"{w}/{name}.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(head)
        out.writerows(r for r in body if keep(int(r[0][1:])))
PY
bin="target/$dir/retainwise"
echo "== retainwise train --group customer_id --observation-date observation_date"
"$bin" train "$work/train.csv" --label churned_next_month --id customer_id --group customer_id \
  --observation-date observation_date -o "$work/m.json" 2>/dev/null \
  | grep -E "ROC AUC|log loss|PR AUC|lift|grouped by|reference"
"$bin" predict "$work/test.csv" --model "$work/m.json" -o "$work/p.csv" 2>/dev/null
"$py" - "$work" <<'PY'
import csv, json, sys, math
w = sys.argv[1]
cv = json.load(open(f"{w}/m.json"))["card"]["cross_validation"]["roc_auc"]
y = [r["churned_next_month"] == "Yes" for r in csv.DictReader(open(f"{w}/test.csv"))]
p = [float(r["churn_probability"]) for r in csv.DictReader(open(f"{w}/p.csv"))]
# ROC AUC by the rank-sum (Mann–Whitney) formula, ties averaged.
order = sorted(range(len(p)), key=lambda i: p[i])
ranks = [0.0] * len(p)
i = 0
while i < len(order):
    j = i
    while j + 1 < len(order) and p[order[j + 1]] == p[order[i]]:
        j += 1
    for k in range(i, j + 1):
        ranks[order[k]] = (i + j) / 2 + 1
    i = j + 1
pos = sum(y); neg = len(y) - pos
auc = (sum(r for r, t in zip(ranks, y) if t) - pos * (pos + 1) / 2) / (pos * neg)
ll = -sum(math.log(q if t else 1 - q) for q, t in zip(p, y)) / len(y)
top = sorted(range(len(p)), key=lambda i: -p[i])[: math.ceil(len(p) / 10)]
lift = (sum(y[i] for i in top) / len(top)) / (pos / len(y))
print(f"retainwise held out ROC AUC {auc:.4f} log loss {ll:.4f} lift@10% {lift:.2f} ({len(y)} rows, {pos} churned)")
# The honesty check: the held-out figure against the card's cross-validated one, in fold SDs.
print(f"retainwise card CV ROC AUC {cv['mean']:.4f} ± {cv['std']:.4f}: held out is "
      f"{(auc - cv['mean']) / cv['std']:+.2f} fold SD from it")
PY
echo "== peers (grouped CV search, refit, same held-out customers)"
"$py" bench/histories_peers.py "$work/train.csv" "$work/test.csv" 2>/dev/null
