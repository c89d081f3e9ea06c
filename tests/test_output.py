"""Output for logs and machines: plain whole lines when stdout is a pipe, `--log-format json` (one JSON object per
event), and MLflow tracking (`tracking: {mlflow: URI}`) against a local file store."""

from __future__ import annotations

import json
import re
import sys

import pytest

import sw2
from tests.conftest import sw2 as run_sw2
from tests.conftest import sw2_here, table_cells, write_spec

SPEC = {
    "name": "iris",
    "data": {"source": "package", "name": "iris"},
    "task": "classify",
    "target": "label",
    "model": {"name": "mlp", "widths": [32], "numeric": "plain"},  # small and quick: the pre-flight in ~0.5 s
    "train": {"epochs": 2, "threads": 1, "lr": 0.03},
}
BOX = set("│┃━─┏┓┗┛┡┩└┘╇╋")


def test_piped_output_is_plain_whole_lines(tmp_path):
    write_spec(tmp_path, SPEC)
    out = "a-bundle-folder-with-a-name-long-enough-that-its-line-passes-eighty-columns"
    res = run_sw2("train", "spec.yaml", "--out", out, "--no-check", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text, lines = res.stdout, res.stdout.splitlines()
    assert "\r" not in text + res.stderr and "\x1b" not in text + res.stderr and not BOX & set(text), text
    epochs = [line for line in lines if line.startswith("epoch ")]  # on stdout, one line each, no progress bar
    assert len(epochs) == 2 and all("train loss" in e and "val accuracy" in e and "lr" in e for e in epochs), text
    assert not any(re.fullmatch(r"[\s\d:.s/-]*", line) for line in lines + res.stderr.splitlines() if line), text
    assert f"sw2: bundle written to {tmp_path / out}" in lines  # not wrapped at 80 columns
    assert all(line == line.rstrip() for line in lines), "lines padded with spaces"
    metrics = json.loads((tmp_path / out / "metrics.json").read_text())["test"]
    for metric in ("accuracy", "log_loss"):  # the table as aligned columns
        assert table_cells(text, metric) == [f"{metrics[metric]:.4f}", f"{metrics['baseline'][metric]:.4f}"]
    widest = max(len(line) for line in lines[lines.index("test (30 examples)") :])
    assert widest < 60, text  # a table as wide as its cells, not the console


def test_log_format_json_is_one_object_per_event(tmp_path):
    write_spec(tmp_path, SPEC)
    res = sw2_here("train", "spec.yaml", "--out", "b", "--log-format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]  # nothing but JSON on stdout
    kinds = [e["event"] for e in events]
    assert all("time" in e for e in events) and kinds[-1] == "metrics", kinds
    verdicts = [e for e in events if e["event"] == "preflight"]
    assert {"check", "status", "message"} <= set(verdicts[0]) and any(v["check"] == "loss at init" for v in verdicts)
    assert any(v["check"] == "beats dumb baseline" for v in verdicts)  # the check after training too
    epochs = [e for e in events if e["event"] == "epoch"]
    history = [json.loads(line) for line in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["val_metric"] == history[-1]["val_metric"]
    assert epochs[0]["metric"] == "accuracy" and epochs[0]["train_loss"] == history[0]["train_loss"]
    logs = [e for e in events if e["event"] == "log"]
    assert any(e["message"].startswith("sw2: bundle written to") and e["level"] == "info" for e in logs)
    saved = json.loads((tmp_path / "b" / "metrics.json").read_text())["test"]
    assert events[-1]["scored"] == "test" and events[-1]["metrics"]["accuracy"] == saved["accuracy"]

    res = sw2_here("--log-format", "json", "test", "b", cwd=tmp_path)  # the flag before the command; a table
    assert res.returncode == 2 and res.stdout == "" and "no tests" in res.stderr, res.stderr
    write_spec(tmp_path, {**SPEC, "tests": [{"metric": "accuracy", "min": 0.1}]}, "tested.yaml")
    res = sw2_here("--log-format", "json", "test", "b", "--spec", "tested.yaml", "--junit", "t.xml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    table, summary = (json.loads(line) for line in res.stdout.splitlines())
    assert table["event"] == "table" and table["columns"][:2] == ["test", "value"], table
    assert table["rows"][0][0] == "accuracy" and table["rows"][0][3] == "PASS", table  # markup gone
    assert summary["event"] == "log" and summary["message"].startswith("1 passed, 0 failed"), summary


def test_tracking_needs_mlflow_and_a_uri(tmp_path, monkeypatch):
    write_spec(tmp_path, {**SPEC, "tracking": {"mlflow": "mlruns"}})
    res = sw2_here("train", "spec.yaml", "--out", "b", cwd=tmp_path)
    assert res.returncode == 2 and "tracking.mlflow: 'mlruns' is not a URI" in res.stderr, res.stderr
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    write_spec(tmp_path, {**SPEC, "tracking": {"mlflow": (tmp_path / "ml").as_uri()}})
    res = sw2_here("train", "spec.yaml", "--out", "b", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "MLflow is not installed; pip install 'sw2[mlflow]'" in res.stderr and not (tmp_path / "b").exists()


def test_mlflow_run_holds_params_epochs_metrics_and_the_bundle(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed: pip install -e '.[mlflow]' (in '.[dev]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a file store unless told
    uri = (tmp_path / "mlruns").as_uri()
    spec = {**SPEC, "tracking": {"mlflow": uri, "experiment": "sw2-tests"}}
    bundle = sw2.train(spec, tmp_path / "b", check=False)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sw2-tests").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "iris"
    params = run.data.params
    assert params["model.name"] == "mlp" and float(params["train.epochs"]) == 2 and params["tracking.mlflow"] == uri
    last = json.loads((bundle.path / "history.jsonl").read_text().splitlines()[-1])
    history = client.get_metric_history(run.info.run_id, "val_metric")
    assert [m.step for m in history] == [1, 2] and history[-1].value == pytest.approx(last["val_metric"])
    assert run.data.metrics["test_accuracy"] == pytest.approx(bundle.metrics["test"]["accuracy"])
    files = {f.path for f in client.list_artifacts(run.info.run_id, "bundle")}
    assert {"bundle/model.safetensors", "bundle/spec.yaml", "bundle/metrics.json"} <= files, files


def test_spec_answers_are_json_objects_and_wide_cells_align(tmp_path):
    """`sw2 spec --columns` and `sw2 spec SPEC` under --log-format json: one JSON object each; the text column
    table aligns names of CJK (two columns wide) and Latin letters alike."""
    from rich.cells import cell_len

    from sw2.data.columns import kinds_table

    rows = "".join(f"{i},{i % 3},{'北京上海'[i % 4]},{i % 2}\n" for i in range(40))
    (tmp_path / "t.csv").write_text("n,城市代码,城市,y\n" + rows, encoding="utf-8")
    res = sw2_here("spec", "--columns", "t.csv", "--target", "y", "--log-format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (event,) = (json.loads(line) for line in res.stdout.splitlines())
    assert event["event"] == "columns" and event["task"].startswith("classify"), event
    assert [c["name"] for c in event["columns"]] == ["n", "城市代码", "城市"] and "kind" in event["columns"][0]
    lines = kinds_table(event["columns"])
    starts = {cell_len(line[: line.index(c["kind"], 2 + len(c["name"]))]) for line, c in zip(lines, event["columns"])}
    assert len(starts) == 1, lines  # each kind starts in the same column of the terminal
    write_spec(tmp_path, SPEC)
    res = sw2_here("spec", "spec.yaml", "--log-format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (event,) = (json.loads(line) for line in res.stdout.splitlines())
    assert event["event"] == "spec" and "name: iris" in event["yaml"], event
