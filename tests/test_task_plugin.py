"""A new kind of task is one file: tests/plugins/multilabel.py (multi-label classification) registers
itself, and trains, evaluates, bundles, reloads and predicts through the normal CLI and Python API, with
no change to sw2's pipeline, CLI, bundle or report."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import sw2
from tests.conftest import sw2 as run_cli
from tests.conftest import write_spec

PLUGINS = Path(__file__).parent / "plugins"


def tagged_rows(n: int, seed: int) -> pd.DataFrame:
    """Four numeric columns; label a when x1 > 0, b when x2 + x3 > 0, c when x4 > 0.5 (any subset)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    tags = [";".join(t for t, on in zip("abc", (r[0] > 0, r[1] + r[2] > 0, r[3] > 0.5)) if on) for r in x]
    return pd.DataFrame({**{f"x{i + 1}": x[:, i] for i in range(4)}, "tags": tags})


def test_a_task_in_one_file_runs_through_the_cli_and_the_api(tmp_path, monkeypatch):
    monkeypatch.setenv("SW2_PLUGINS", "multilabel")  # the CLI process imports it, as sw2 imports its own
    monkeypatch.setenv("PYTHONPATH", f"{PLUGINS}:{Path(__file__).parent.parent}")
    monkeypatch.syspath_prepend(str(PLUGINS))
    tagged_rows(800, 0).to_csv(tmp_path / "tags.csv", index=False)
    new = tagged_rows(5, 1)
    new.drop(columns="tags").to_csv(tmp_path / "new.csv", index=False)
    spec = {"name": "tags", "task": "multilabel", "target": "tags", "data": {"path": "tags.csv"},
            "train": {"epochs": 30, "lr": 0.01, "batch_size": 64}}  # fmt: skip
    r = run_cli("train", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "bundle"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "beats dumb baseline" in r.stdout and "PASS" in r.stdout

    metrics = json.loads((tmp_path / "bundle" / "metrics.json").read_text())
    assert metrics["test"]["micro_f1"] > 0.85 > metrics["test"]["baseline"]["micro_f1"], metrics["test"]
    assert (tmp_path / "bundle" / "report.html").stat().st_size > 10_000

    r = run_cli("predict", str(tmp_path / "bundle"), str(tmp_path / "new.csv"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row.keys() for row in rows][0] >= {"id", "prediction", "p_a", "p_b", "p_c"}

    import multilabel  # noqa: F401  (the same file registers it in this process)

    bundle = sw2.load(tmp_path / "bundle")
    got = bundle.predict(new.drop(columns="tags"))
    assert list(got) == [row["prediction"] for row in rows]
    right = np.mean([set(filter(None, g.split(";"))) == set(filter(None, t.split(";"))) for g, t in zip(got, new.tags)])
    assert right >= 0.6, (list(got), list(new.tags))
    again = sw2.evaluate(bundle, tmp_path / "tags.csv")
    assert again["micro_f1"] > 0.85 and again["n"] == 800
    assert "multilabel" in sys.modules


def test_a_plugin_module_that_does_not_import_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SW2_PLUGINS", "no_such_plugin_module")
    spec = write_spec(tmp_path, {"data": {"source": "package", "name": "iris"}})
    r = run_cli("spec", str(spec))
    assert r.returncode == 2 and "$SW2_PLUGINS: cannot import 'no_such_plugin_module'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_a_bundle_of_several_networks_is_refused_where_one_network_is_run(tmp_path, fast_train):
    """model.json with "modules" (a task that trains two networks): predict, serve, export and compress run one
    network on examples, so each refuses it in one line (exit 2) unless its task says otherwise."""
    from safetensors.torch import load_file, save_file

    from tests.conftest import sw2_here

    spec = {"name": "two", "data": {"source": "package", "name": "iris"}, "target": "species",
            "model": {"name": "mlp"}, "train": fast_train}  # fmt: skip
    path = write_spec(tmp_path, spec)
    bundle = sw2.train(path, tmp_path / "bundle", verbose=False, check=False).path
    one = json.loads((bundle / "model.json").read_text())
    (bundle / "model.json").write_text(json.dumps({"modules": {"generator": one, "critic": one}}))
    weights = load_file(bundle / "model.safetensors")
    both = {f"{net}.{k}": v.clone() for net in ("generator", "critic") for k, v in weights.items()}
    save_file(both, bundle / "model.safetensors")
    assert sw2.load(bundle).networks == ["generator", "critic"]
    rows = tmp_path / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    compress = ("compress", str(bundle), "--quantize", "int8", "--out", str(tmp_path / "small"))
    for args in (("predict", str(bundle), str(rows)), ("export", str(bundle)), compress, ("serve", str(bundle))):
        r = sw2_here(*args)
        assert r.returncode == 2 and "holds 2 networks (generator, critic)" in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
