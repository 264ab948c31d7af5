"""A history file from data we did not write: the subscription simulator published with the book
"Fighting Churn with Data" (Carl Gold; PyPI package `fightchurn`, module
`fightchurn.churnsim`, described in "ChurnSim", SSRN 4540160), run in memory (its own
customers, behaviour and utility models; only the database writes are left out), then turned
into one row per customer per monthly observation date: event counts of the 28 days before the
date, the signup date, the channel and country, and whether the customer churned within the
next month. Nothing is downloaded: the simulator and its settings come with the package.

Usage: python3 bench/fightchurn_history.py OUT.csv [CUSTOMERS] [MONTHS] [SEED]
"""
import os
import sys
import tempfile

out_path = sys.argv[1]
customers = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
months = int(sys.argv[3]) if len(sys.argv) > 3 else 12
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 11

work = tempfile.mkdtemp()
# The simulator numbers customers through a file in the temporary folder and writes its settings
# under CHURN_OUT_DIR: both go to a folder of our own.
os.environ["TMPDIR"] = work
os.environ["CHURN_OUT_DIR"] = work
tempfile.tempdir = work

import csv
import random
from datetime import date, timedelta

import numpy as np
from dateutil.relativedelta import relativedelta
from omegaconf import OmegaConf

import fightchurn.churnsim.churnsim as churnsim

conf_dir = os.path.join(os.path.dirname(churnsim.__file__), "conf")
start = date(2020, 1, 1)
end = start + relativedelta(months=months)
args = OmegaConf.merge(
    OmegaConf.load(os.path.join(conf_dir, "default.yaml")),
    OmegaConf.load(os.path.join(conf_dir, "socialnet7.yaml")),
)
args.start_date = start.isoformat()
args.end_date = end.isoformat()
args.init_customers = customers
args.random_seed = seed
args.n_parallel = 1
if "defaults" in args:
    del args["defaults"]
np.random.seed(seed)
random.seed(seed)
sim = churnsim.ChurnSimulation(args)

# The simulator's own month loop (ChurnSimulation.run_simulation), customers kept in memory.
people = []
month, n = start, customers
while month < end:
    for _ in range(n):
        people.append(sim.simulate_customer(month))
    month += relativedelta(months=1)
    n = int(np.ceil(n * (1.0 + args.growth_rate))) if month > start + relativedelta(months=1) else int(np.ceil(customers * args.growth_rate))

behaviors = None
rows = []
for cid, c in enumerate(people):
    names = dict(zip(c.behavior_rates.index, c.behavior_rates["behavior"]))
    if behaviors is None:
        behaviors = [names[k] for k in sorted(names)]
    last_end = c.subscriptions[-1][2]
    churn_at = last_end if last_end <= end else None
    first = c.start_date
    # Daily event counts per behaviour, from the simulator's event tuples.
    span = (end - first).days + 1
    daily = np.zeros((len(behaviors), span))
    order = {k: i for i, k in enumerate(sorted(names))}
    for when, kind, _user, _value in c.events:
        day = (when.date() - first).days
        if day < span:  # the last simulated month runs past the window's end
            daily[order[kind], day] += 1
    cum = np.concatenate([np.zeros((len(behaviors), 1)), np.cumsum(daily, axis=1)], axis=1)
    obs = start + relativedelta(months=1)
    while obs + relativedelta(months=1) <= end:
        active = first < obs and (churn_at is None or churn_at > obs)
        if active:
            d = (obs - first).days
            a, b = max(d - 28, 0), max(d - 56, 0)
            last28 = cum[:, d] - cum[:, a]
            prev28 = cum[:, a] - cum[:, b]
            churned = churn_at is not None and churn_at <= obs + relativedelta(months=1)
            rows.append(
                [f"S{cid:06d}", obs.isoformat(), first.isoformat(), c.channel, c.country or "",
                 getattr(c, "age", "")]
                + [int(x) for x in last28]
                + [f"{(x / y):.3f}" if y > 0 else "" for x, y in zip(last28, prev28)]
                + ["Yes" if churned else "No"]
            )
        obs += relativedelta(months=1)

with open(out_path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["customer_id", "observation_date", "signup_date", "channel", "country", "age"]
               + [f"{b}_28d" for b in behaviors] + [f"{b}_change" for b in behaviors]
               + ["churned_next_month"])
    w.writerows(rows)
print(f"{len(people)} simulated customers, {len(rows)} rows, "
      f"{sum(r[-1] == 'Yes' for r in rows)} churned next month", file=sys.stderr)
