"""Writes average_precision_sklearn.json (beside this script): scores, labels and scikit-learn's
average_precision_score for random, tie-heavy and edge cases (run with bench/.venv/bin/python scripts/make_ap_fixture.py)."""
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score

rng = np.random.default_rng(7)
cases = []
for n in [2, 5, 17, 100, 1000, 5000]:
    for kind in ["continuous", "ties"]:
        y = (rng.random(n) < 0.35).astype(int)
        y[0] = 1
        s = rng.standard_normal(n) + y
        if kind == "ties":
            s = np.round(s * 2) / 2
        cases.append({"id": f"{kind}_n{n}", "scores": s.tolist(), "labels": y.tolist()})
cases.append({"id": "single_positive", "scores": [0.1, 0.9, 0.4, 0.3], "labels": [0, 0, 1, 0]})
cases.append({"id": "all_positive", "scores": [0.5, 0.2, 0.2], "labels": [1, 1, 1]})
cases.append({"id": "all_tied", "scores": [1.0] * 6, "labels": [1, 0, 1, 0, 0, 1]})
cases.append({"id": "extremes", "scores": [1e300, 0.0, -1e300, 1.0, -0.0], "labels": [1, 0, 0, 1, 1]})
for c in cases:
    c["expected"] = float(average_precision_score(c["labels"], c["scores"]))
out = {"generator": f"scikit-learn {sklearn.__version__} average_precision_score", "cases": cases}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "average_precision_sklearn.json"), "w") as f:
    json.dump(out, f)
print(len(cases), "cases")
