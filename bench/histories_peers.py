"""Peers on customer histories: tuned LightGBM and XGBoost, trained and evaluated the way
`retainwise train --group` is, so the figures can be read side by side.

Usage: python3 bench/histories_peers.py TRAIN.csv TEST.csv [GROUP] [LABEL]

TRAIN and TEST hold different customers (one row per customer per observation date). For each
peer, a small grid (depth / leaves, learning rate; rounds by early stopping) is searched with
customer-grouped stratified 5-fold CV on TRAIN (scikit-learn's StratifiedGroupKFold) and chosen
by mean log loss; the chosen settings are refitted on all of TRAIN and scored on TEST.
Printed per peer: the grouped-CV ROC AUC (mean ± std) and log loss, and held-out ROC AUC, log
loss, PR AUC (average precision) and top-decile lift. Dates are read as days before each row's
observation date when both columns exist; text columns become categories.
"""
import sys

import numpy as np
import pandas as pd
import lightgbm as lgb
import xgboost as xgb
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

train_path, test_path = sys.argv[1], sys.argv[2]
group = sys.argv[3] if len(sys.argv) > 3 else "customer_id"
label = sys.argv[4] if len(sys.argv) > 4 else "churned_next_month"


def load(path):
    df = pd.read_csv(path)
    y = df.pop(label).astype(str).str.lower().isin(["yes", "1", "true", "churned"]).astype(int).values
    g = df.pop(group).values
    if "observation_date" in df and "signup_date" in df:
        obs = pd.to_datetime(df.pop("observation_date"))
        df["signup_days"] = (obs - pd.to_datetime(df.pop("signup_date"))).dt.days
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category")
    return df, y, g


import sklearn

print(f"peers: LightGBM {lgb.__version__}, XGBoost {xgb.__version__}, scikit-learn {sklearn.__version__}")
X, y, g = load(train_path)
Xt, yt, _ = load(test_path)
for c in X.columns:
    if str(X[c].dtype) == "category":
        Xt[c] = pd.Categorical(Xt[c], categories=X[c].cat.categories)


def lift(y_true, p):
    top = int(np.ceil(len(p) / 10))
    order = np.argsort(-p, kind="stable")[:top]
    return y_true[order].mean() / y_true.mean()


def lgb_model(depth, lr, rounds):
    return lgb.LGBMClassifier(n_estimators=rounds, learning_rate=lr, num_leaves=2 ** depth - 1,
                              max_depth=depth, min_child_samples=40, subsample=0.8,
                              subsample_freq=1, colsample_bytree=0.8, verbose=-1, random_state=42)


def xgb_model(depth, lr, rounds):
    return xgb.XGBClassifier(n_estimators=rounds, learning_rate=lr, max_depth=depth,
                             subsample=0.8, colsample_bytree=0.8, min_child_weight=5,
                             enable_categorical=True, tree_method="hist", random_state=42)


GRID = [(d, lr) for d in (2, 3, 4, 6) for lr in (0.03, 0.1)]
folds = list(StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=42).split(X, y, g))

for name, make in [("LightGBM", lgb_model), ("XGBoost", xgb_model)]:
    best = None
    for depth, lr in GRID:
        # Rounds by early stopping on each fold's held-out customers: the mean best round count.
        rounds, aucs, lls = [], [], []
        for tr, te in folds:
            m = make(depth, lr, 2000)
            if name == "LightGBM":
                m.fit(X.iloc[tr], y[tr], eval_set=[(X.iloc[te], y[te])], eval_metric="binary_logloss",
                      callbacks=[lgb.early_stopping(50, verbose=False)])
                rounds.append(m.best_iteration_ or 2000)
            else:
                m.set_params(early_stopping_rounds=50, eval_metric="logloss")
                m.fit(X.iloc[tr], y[tr], eval_set=[(X.iloc[te], y[te])], verbose=False)
                rounds.append(m.best_iteration + 1)
            p = m.predict_proba(X.iloc[te])[:, 1]
            aucs.append(roc_auc_score(y[te], p))
            lls.append(log_loss(y[te], p))
        cand = (np.mean(lls), np.mean(aucs), np.std(aucs), depth, lr, int(np.mean(rounds)))
        if best is None or cand[0] < best[0]:
            best = cand
    ll, auc, auc_sd, depth, lr, n = best
    m = make(depth, lr, n)
    m.fit(X, y)
    p = m.predict_proba(Xt)[:, 1]
    print(f"{name:9s} depth {depth} lr {lr} rounds {n:4d} | grouped CV ROC AUC {auc:.4f} ± {auc_sd:.4f} "
          f"log loss {ll:.4f} | held out ROC AUC {roc_auc_score(yt, p):.4f} log loss {log_loss(yt, p):.4f} "
          f"PR AUC {average_precision_score(yt, p):.4f} lift@10% {lift(yt, p):.2f}")
