"""What a spec or a bundle from someone else can make sw2 do: no code runs from a model test's `where:`,
no file outside the bundle is read on its say-so (its spec's paths, its ONNX graph's external data), its spec
does not choose where sw2 writes, and its model.json does not choose the code transformers runs."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import sw2
import sw2.api
from sw2 import where
from sw2.spec import parse_spec
from tests.conftest import make_image_folder, write_spec
from tests.conftest import sw2_here as run_sw2

ESCAPES = [
    # the escape: a column's class reaches the module globals, then os.system
    "x1.__class__.__init__.__globals__.get('sys').modules.get('os').system('touch MARKER') == 0",
    "__import__('os').system('touch MARKER') == 0",
    "@pd.io.common.os.system('touch MARKER')",  # pandas eval's local-variable syntax
    "x1.str.len() > 0",
    "x1[0] == 1",
    "(lambda: __import__('os'))() == 1",
    "[c for c in ().__class__.__bases__[0].__subclasses__()] == 1",
    "open('MARKER', 'w').write('x') > 0",
    "f'{x1.__class__}' == ''",
    "(x1 := 1) == 1",
    "9 ** 9 ** 9 > 1",
    "'a' * 10 ** 9 == 'b'",
    "__builtins__ == 1",
    "isna(x1.__class__)",
    "(" * 600 + "x1" + ")" * 600 + " > 1",
]


def table(folder: Path, n: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": rng.choice(["red", "blue"], n), "y": (x1 + x2 > 0).astype(int)})
    frame.to_csv(folder / "rows.csv", index=False)
    return folder / "rows.csv"


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("expression", ESCAPES)
def test_where_escapes_are_refused_at_validation(expression):
    spec = {
        "data": {"path": "rows.csv"},
        "target": "y",
        "tests": [{"metric": "accuracy", "min": 0, "where": expression}],
    }
    with pytest.raises(sw2.UserError, match=r"tests\.0\.where: .*; use column names") as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)


def test_where_escape_in_a_spec_runs_nothing(tmp_path):
    table(tmp_path)
    spec = {"data": {"path": "rows.csv"}, "target": "y", "train": {"epochs": 1}}
    spec["tests"] = [{"metric": "accuracy", "min": 0, "where": ESCAPES[0]}]
    write_spec(tmp_path, spec)
    before = files(tmp_path)
    for args in (["train", "spec.yaml", "--quiet", "--out", "b"], ["check", "spec.yaml"], ["spec", "spec.yaml"]):
        res = run_sw2(*args, cwd=tmp_path)
        assert res.returncode == 2 and res.stderr.startswith("error: spec.yaml: tests.0.where: "), res.stderr
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert files(tmp_path) == before and not (tmp_path / "MARKER").exists()


@pytest.fixture(scope="module")
def table_bundle(tmp_path_factory) -> Path:
    """A small table bundle with a passing `where:` test, trained once (the spec's data lies beside it)."""
    folder = tmp_path_factory.mktemp("hostile")
    table(folder)
    spec = {
        "name": "rows",
        "data": {"path": "rows.csv"},
        "target": "y",
        "train": {"epochs": 20, "batch_size": 16, "lr": 0.01},
        "tests": [{"metric": "accuracy", "min": 0.7, "where": "x1 > 0 and colour in ['red', 'blue']"}],
    }
    write_spec(folder, spec)
    res = run_sw2("train", "spec.yaml", "--quiet", "--no-check", "--out", "b", cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder


def tampered(folder: Path, name: str, change) -> Path:
    """A copy of the bundle `folder/b` whose spec.yaml `change` edited (as someone sharing it could)."""
    copy = folder / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder / "b", copy)
    raw = yaml.safe_load((copy / "spec.yaml").read_text())
    change(raw)
    (copy / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy


def test_where_escape_in_a_shared_bundle_runs_nothing(table_bundle):
    def escape(raw):
        raw["tests"][0]["where"] = ESCAPES[0]

    tampered(table_bundle, "evil", escape)
    for args in (["test", "evil"], ["predict", "evil", "rows.csv"]):  # the spec is refused when the bundle loads
        res = run_sw2(*args, cwd=table_bundle)
        assert res.returncode == 2 and "tests.0.where: the only calls are isna" in res.stderr, (args, res.stderr)
        assert res.stderr.count("\n") == 1
    assert not (table_bundle / "MARKER").exists()


def test_bundle_cannot_make_sw2_read_files_outside_itself(table_bundle, monkeypatch):
    secret = table_bundle.parent / "secret.csv"
    secret.write_text("x1,x2,colour,y\n1,2,red,1\n")

    def outside(raw):
        raw["data"]["path"] = "../../secret.csv"

    def absolute(raw):
        raw["data"]["path"] = str(secret)

    def examples(raw):
        raw["tests"].append({"kind": "examples", "path": str(secret)})

    read = []
    with monkeypatch.context() as patch:  # the CLI runs in this process: it sees the patch
        patch.setattr(importlib.import_module("sw2.tasks.supervised"), "prepare", lambda *a, **k: read.append(a))
        for name, change in (("up", outside), ("abs", absolute), ("ex", examples)):
            bundle = tampered(table_bundle, name, change)
            before = files(table_bundle), secret.stat().st_mtime_ns
            for args in (["test", name], ["report", name]):
                res = run_sw2(*args, cwd=table_bundle)
                assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
                assert (
                    "does not lie inside the bundle, and a bundle cannot make sw2 read files outside itself"
                    in res.stderr
                )
                assert "give your spec file with --spec, or the data with --data" in res.stderr
            for call in (sw2.verify, sw2.report):
                with pytest.raises(sw2.UserError, match="not lie inside the bundle"):
                    call(bundle)
            assert (files(table_bundle), secret.stat().st_mtime_ns) == before, "nothing written, nothing changed"
    assert not read, "no data was prepared from a path the bundle named"
    # the spec the user trained from (its own files) and --data are fine; the default tests.xml stays untouched
    res = run_sw2("test", "b", "--spec", "spec.yaml", cwd=table_bundle)
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr
    res = run_sw2("test", "b", "--data", "rows.csv", cwd=table_bundle)
    assert res.returncode == 0, res.stderr


def test_the_data_a_bundle_carries_inside_itself_is_read(table_bundle):
    def inside(raw):
        raw["data"]["path"] = "rows.csv"

    bundle = tampered(table_bundle, "carries", inside)
    shutil.copy(table_bundle / "rows.csv", bundle / "rows.csv")
    res = run_sw2("test", "carries", cwd=table_bundle)
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr
    (bundle / "rows.csv").unlink()
    os.symlink(table_bundle / "rows.csv", bundle / "rows.csv")  # a link out of the bundle is outside it
    res = run_sw2("test", "carries", cwd=table_bundle)
    assert res.returncode == 2 and "holds a link to a file outside the bundle" in res.stderr


def test_a_forged_or_borrowed_data_record_is_refused(table_bundle, monkeypatch):
    """The bundle alone reads its data only where its provenance.json (sw2.provenance) is signed by this user's
    sw2 for the spec's own paths: a record redirected to another file (signature kept, forged or missing), or a
    genuine record under a spec naming another file, is refused, and nothing is read."""
    from sw2 import provenance

    secret = table_bundle.parent / "secret.csv"
    secret.write_text("x1,x2,colour,y\n1,2,red,1\n")
    genuine = tampered(table_bundle, "genuine", lambda raw: None)
    provenance.write(genuine, sw2.load(genuine).spec, table_bundle, None)  # signed with this test's key

    def redirected(name: str, mac: str | None) -> None:
        bundle = tampered(table_bundle, name, lambda raw: None)
        record = json.loads((genuine / "provenance.json").read_text())
        record["files"]["data.path"].update(provenance._print(secret))  # its path, size and sha256: all but the mac
        record.pop("mac")
        if mac is not None:
            record["mac"] = provenance._mac(os.urandom(32), record) if mac == "forged" else mac
        (bundle / "provenance.json").write_text(json.dumps(record))

    kept = json.loads((genuine / "provenance.json").read_text())["mac"]
    redirected("kept", kept)
    redirected("forged", "forged")
    redirected("unsigned", None)
    borrowed = tampered(table_bundle, "borrowed", lambda raw: raw["data"].update(path="../../secret.csv"))
    shutil.copy(genuine / "provenance.json", borrowed)  # a genuine record, under a spec naming another file
    why = {
        "kept": "is not signed by your sw2's key",
        "forged": "is not signed by your sw2's key",
        "unsigned": "is not as sw2 writes it",
        "borrowed": "was written for another bundle (its spec.yaml or preprocess.json differ)",  # it binds them
    }
    read = []
    with monkeypatch.context() as patch:
        patch.setattr(importlib.import_module("sw2.tasks.supervised"), "prepare", lambda *a, **k: read.append(a))
        for name, reason in why.items():
            for args in (["test", name], ["report", name]):
                res = run_sw2(*args, cwd=table_bundle)
                assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
                assert "a bundle cannot make sw2 read files outside itself" in res.stderr and reason in res.stderr
    assert not read, "no data was prepared from a path the bundle named"
    res = run_sw2("test", "genuine", cwd=table_bundle)  # the genuine record, under this test's key: read
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr


def test_a_crafted_record_is_refused_in_one_line(table_bundle):
    """A provenance.json crafted to crash the check (a non-ASCII mac, JSON nested past Python's recursion limit)
    or a link in its place is refused like any record sw2 did not write: one line, no traceback, nothing read."""
    from sw2 import provenance

    genuine = tampered(table_bundle, "crafted-genuine", lambda raw: None)
    provenance.write(genuine, sw2.load(genuine).spec, table_bundle, None)
    signed = json.loads((genuine / "provenance.json").read_text())
    crafted = {
        "non-ascii-mac": (json.dumps({**signed, "mac": "é"}), "is not signed by your sw2's key"),
        "deep": ('{"files": ' + "[" * 100_000 + "]" * 100_000 + ', "mac": "x"}', "is not as sw2 writes it"),
        "linked": (None, "is a link, not a file as sw2 writes it"),
    }
    for name, (text, reason) in crafted.items():
        bundle = table_bundle / name
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.copytree(genuine, bundle)
        if text is None:  # a link to a genuine record inside the bundle itself (Bundle refuses links out of it)
            (bundle / "provenance.json").rename(bundle / "kept.json")
            os.symlink(bundle / "kept.json", bundle / "provenance.json")
        else:
            (bundle / "provenance.json").write_text(text)
        for args in (["test", name], ["report", name]):
            res = run_sw2(*args, cwd=table_bundle)
            assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
            assert reason in res.stderr and "a bundle cannot make sw2 read files outside itself" in res.stderr
    res = run_sw2("test", "crafted-genuine", cwd=table_bundle)
    assert res.returncode == 0 and "1 passed, 0 failed" in res.stdout, res.stdout + res.stderr


def test_a_record_moved_into_another_bundle_is_refused(table_bundle):
    """A genuine record is good in the bundle it was written for alone: moved into a bundle of the same name,
    task and target whose spec.yaml or preprocess.json differ, it is refused; a copy of the whole bundle (or a
    `sw2 compress` variant: new weights, the same spec.yaml and preprocess.json) keeps it."""
    from sw2 import provenance

    genuine = tampered(table_bundle, "moved-genuine", lambda raw: None)
    provenance.write(genuine, sw2.load(genuine).spec, table_bundle, None)
    recorded = json.loads((genuine / "provenance.json").read_text())["bundle"]
    assert set(recorded) == {"spec.yaml", "preprocess.json"}

    def other_epochs(raw):
        raw["train"]["epochs"] = 3

    moved = {"other-spec": tampered(table_bundle, "other-spec", other_epochs)}
    moved["other-encoder"] = tampered(table_bundle, "other-encoder", lambda raw: None)
    state = json.loads((moved["other-encoder"] / "preprocess.json").read_text())
    (moved["other-encoder"] / "preprocess.json").write_text(json.dumps(state, indent=1))  # its own encoder
    for name, bundle in moved.items():
        shutil.copy(genuine / "provenance.json", bundle)
        with pytest.raises(sw2.UserError, match="was written for another bundle") as err:
            sw2.verify(bundle)
        assert "a bundle cannot make sw2 read files outside itself" in str(err.value), name
    copy = table_bundle / "moved-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(genuine, copy)
    (copy / "model.safetensors").write_bytes((genuine / "model.safetensors").read_bytes())  # as compress writes
    assert sw2.verify(copy)[0].passed


def test_spec_of_another_task_or_target_is_refused(table_bundle):
    raw = yaml.safe_load((table_bundle / "spec.yaml").read_text())
    tests = [{"kind": "metric", "metric": "rmse", "max": 1.0}]  # a valid spec of its own task
    write_spec(table_bundle, {**raw, "target": "x2", "task": "regress", "tests": tests}, "other.yaml")
    res = run_sw2("test", "b", "--spec", "other.yaml", cwd=table_bundle)
    assert res.returncode == 2 and "differ from the bundle's" in res.stderr, res.stderr


def test_bundle_spec_does_not_choose_where_sw2_writes(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=8)
    spec = {"data": {"path": "imgs", "cache_dir": str(tmp_path / "cache")}, "train": {"epochs": 1}}
    write_spec(tmp_path, spec)
    res = run_sw2("train", "spec.yaml", "--quiet", "--no-check", "--out", "b", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    raw = yaml.safe_load((tmp_path / "b" / "spec.yaml").read_text())
    raw["data"]["cache_dir"] = str(tmp_path / "planted")
    (tmp_path / "b" / "spec.yaml").write_text(yaml.safe_dump(raw))
    assert sw2.load(tmp_path / "b").spec.data.cache_dir is None
    make_image_folder(tmp_path / "new", per_class=3, seed=5)
    res = run_sw2("eval", "b", "--data", "new", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "planted").exists()


GRAMMAR = pd.DataFrame(
    {
        "age": [20, 35, 50, np.nan, 64],
        "island": ["Dream", "Biscoe", None, "Dream", "Torgersen"],
        "body mass": [3000, 4200, 3900, 5000, 4100],
        "ok": [True, False, True, True, False],
    }
)


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("age > 30", GRAMMAR["age"] > 30),
        ("age >= 20 and island == 'Dream'", (GRAMMAR["age"] >= 20) & (GRAMMAR["island"] == "Dream")),
        ("(age < 30) | (island == 'Biscoe')", (GRAMMAR["age"] < 30) | (GRAMMAR["island"] == "Biscoe")),
        ("30 <= age < 60", (GRAMMAR["age"] >= 30) & (GRAMMAR["age"] < 60)),
        ("island in ['Dream', 'Biscoe']", GRAMMAR["island"].isin(["Dream", "Biscoe"])),
        ("island not in ('Dream',)", ~GRAMMAR["island"].isin(["Dream"])),
        ("not age > 30", ~(GRAMMAR["age"] > 30)),
        ("~(age > 30) & ok", ~(GRAMMAR["age"] > 30) & GRAMMAR["ok"]),
        ("isna(age) or isna(island)", GRAMMAR["age"].isna() | GRAMMAR["island"].isna()),
        ("notna(island) and age != 35", GRAMMAR["island"].notna() & (GRAMMAR["age"] != 35)),
        ("`body mass` > 4000", GRAMMAR["body mass"] > 4000),
        ("age > -1.5e1", GRAMMAR["age"] > -15),
        ("ok == True", GRAMMAR["ok"]),
    ],
)
def test_where_grammar_selects_the_rows_pandas_would(expression, expected):
    assert where.parse(expression).evaluate(GRAMMAR).tolist() == expected.fillna(False).astype(bool).tolist()


@pytest.mark.parametrize(
    "expression, message",
    [
        ("height > 3", "no column 'height'"),
        ("island > 3", "cannot compare"),
        ("age", "not a condition"),
        ("island and age > 3", "column 'island' is not a condition"),
    ],
)
def test_where_on_rows_it_does_not_fit(expression, message):
    with pytest.raises(ValueError, match=message):
        where.parse(expression).evaluate(GRAMMAR)


def test_bundle_with_a_link_out_of_itself_is_refused(table_bundle):
    """A bundle whose own file (curves.png, spec.yaml, ...) links elsewhere would have sw2 read, or embed in a
    report, a file of the user's: refused at load."""
    bundle = tampered(table_bundle, "linked", lambda raw: None)
    (bundle / "curves.png").unlink()
    os.symlink(table_bundle / "rows.csv", bundle / "curves.png")
    before = files(table_bundle)
    res = run_sw2("report", "linked", cwd=table_bundle)
    assert res.returncode == 2 and "holds a link to a file outside the bundle" in res.stderr, res.stderr
    assert files(table_bundle) == before


def test_junit_and_report_out_are_checked_before_any_work(table_bundle):
    before = files(table_bundle)
    for args, needle in (
        (["test", "b", "--spec", "spec.yaml", "--junit", "b"], "is a folder"),
        (["test", "b", "--spec", "spec.yaml", "--junit", "no/such/x.xml"], "does not exist"),
        (["test", "b", "--data", "rows.csv", "--junit", "rows.csv"], "is an input of this command"),
        (["report", "b", "--spec", "spec.yaml", "--out", "b/model.json"], "inside the bundle"),
    ):
        res = run_sw2(*args, cwd=table_bundle)
        assert res.returncode == 2 and needle in res.stderr and res.stderr.count("\n") == 1, (args, res.stderr)
    assert files(table_bundle) == before


def test_out_older_bundle_holding_a_user_file_is_refused(table_bundle):
    (table_bundle / "b" / "notes.txt").write_text("mine")
    try:
        res = run_sw2("train", "spec.yaml", "--quiet", "--out", "b", cwd=table_bundle)
        assert res.returncode == 2 and "also holds notes.txt, which sw2 did not write" in res.stderr, res.stderr
        assert (table_bundle / "b" / "notes.txt").read_text() == "mine"
    finally:
        (table_bundle / "b" / "notes.txt").unlink()


@pytest.mark.parametrize(
    "expression, message",
    [("~" * 990 + "age", "nested more than 32 deep"), ("age in [island]", "numbers and strings only")],
)
def test_where_nesting_and_lists_are_bounded(expression, message):
    with pytest.raises(ValueError, match=message):
        where.parse(expression)


SECRET = b"sk-test-0123456789abcdef"  # a fake key in the user's working folder


def external(name: str, dtype: str = "FLOAT") -> Any:
    """A tensor of 2 values (floats or bytes) that ONNX Runtime would read from secret.txt in the working folder."""
    import onnx

    t = onnx.TensorProto(name=name, data_type=getattr(onnx.TensorProto, dtype), dims=[2])
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "secret.txt"), ("offset", "0"), ("length", "8" if dtype == "FLOAT" else "2")):
        t.external_data.add(key=key, value=value)
    return t


def hostile_graphs() -> dict[str, Any]:
    """Graphs of a table model's input (`num`, 2 columns) to 2 outputs, each adding the first bytes of
    secret.txt through an external tensor: an initializer (bytes, cast: ONNX Runtime's optimiser would stop at
    a float one), and a Constant node inside an If branch. Without the check, both load and leak."""
    from onnx import TensorProto, helper

    def model(nodes: list[Any], initializers: list[Any] = ()) -> Any:
        num = helper.make_tensor_value_info("num", TensorProto.FLOAT, ["batch", 2])
        out = helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", 2])
        graph = helper.make_graph(nodes, "g", [num], [out], list(initializers))
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)

    def branch(name: str, value: Any) -> Any:
        out = helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node("Constant", [], [name], value=value)], name, [], [out])

    zeros = helper.make_tensor("z", TensorProto.FLOAT, [2], [0.0, 0.0])
    hidden = [
        helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
        helper.make_node("If", ["cond"], ["w"], then_branch=branch("t", external("c")), else_branch=branch("e", zeros)),
        helper.make_node("Add", ["num", "w"], ["outputs"]),
    ]
    return {
        "initializer": model(
            [
                helper.make_node("Cast", ["w"], ["f"], to=TensorProto.FLOAT),
                helper.make_node("Add", ["num", "f"], ["outputs"]),
            ],
            [external("w", "UINT8")],
        ),
        "if-constant": model(hidden),
    }


@pytest.mark.parametrize("place", ["initializer", "if-constant"])
def test_onnx_graph_naming_external_data_is_refused(table_bundle, tmp_path, monkeypatch, place):
    """ONNX Runtime reads a tensor's external data relative to the working folder, even from a graph given as
    bytes: a bundle's graph could hand a file of the user's back as outputs. Refused before any session."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    graph = hostile_graphs()[place]
    bundle = tampered(table_bundle, f"ext-{place}", lambda raw: None)
    (bundle / "model.onnx").write_bytes(graph.SerializeToString())
    (tmp_path / "secret.txt").write_bytes(SECRET)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sw2.UserError, match="keeps its data in another file") as err:
        sw2.load(bundle, backend="onnx")
    message = str(err.value)
    assert "\n" not in message and "secret.txt" in message and SECRET.decode() not in message
    res = run_sw2("predict", str(bundle), str(table_bundle / "rows.csv"), "--backend", "onnx", cwd=tmp_path)
    assert res.returncode == 2 and "ONNX external data" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert SECRET.decode() not in res.stdout + res.stderr


PLACES = ("initializer", "sparse_initializer", "constant_t", "constant_sparse", "attribute_tensors", "loop_body")


def everywhere() -> dict[str, Any]:
    """Models holding an external tensor, each in another place a ModelProto can hold one."""
    from onnx import AttributeProto, TensorProto, helper

    def constant(**value: Any) -> Any:
        return helper.make_node("Constant", [], ["x"], **(value or {"value": external("x")}))

    def sparse() -> Any:
        return helper.make_sparse_tensor(external("v"), helper.make_tensor("i", TensorProto.INT64, [2], [0, 1]), [4])

    def graph(nodes: list[Any] = (), **fields: Any) -> Any:
        g = helper.make_graph(list(nodes), "g", [], [])
        for name, values in fields.items():
            getattr(g, name).extend(values)
        return g

    custom = helper.make_node("Custom", [], ["x"], domain="x")
    custom.attribute.add(name="tensors", type=AttributeProto.TENSORS).tensors.extend([external("t")])
    places = [
        graph(initializer=[external("w")]),
        graph(sparse_initializer=[sparse()]),
        graph([constant()]),
        graph([constant(sparse_value=sparse())]),
        graph([custom]),
        graph([helper.make_node("Loop", ["n", "c"], ["o"], body=graph([constant()]))]),
    ]
    models = {name: helper.make_model(g) for name, g in zip(PLACES, places, strict=True)}
    function = helper.make_function("f", "fn", [], ["x"], [constant()], [])
    models["function"] = helper.make_model(graph(), functions=[function])
    models["training_info"] = helper.make_model(graph())
    models["training_info"].training_info.add().initialization.CopyFrom(graph(initializer=[external("w")]))
    return models


@pytest.mark.parametrize("place", [*PLACES, "function", "training_info"])
def test_external_data_is_found_wherever_the_graph_holds_it(place):
    pytest.importorskip("onnx")
    from sw2.runtime.self_contained import check_graph

    with pytest.raises(sw2.UserError, match=r"^m\.onnx: tensor '\w' \(external data at 'secret\.txt'\) keeps its data"):
        check_graph(everywhere()[place].SerializeToString(), "m.onnx")


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""

    def varint(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
        return out + bytes([n])

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_a_graph_that_does_not_parse_is_a_one_line_error():
    pytest.importorskip("onnx")
    from sw2.runtime.self_contained import check_graph

    inner = b""
    for _ in range(300):  # graph > node > attribute g > graph ...: deeper than protobuf parses
        inner = _field(1, _field(5, _field(6, inner)))
    for graph in (b"not a graph", _field(7, inner)):
        with pytest.raises(sw2.UserError, match=r"^m\.onnx: not an ONNX graph \(.*\); export the bundle again$") as err:
            check_graph(graph, "m.onnx")
        assert "\n" not in str(err.value)


def test_model_json_does_not_choose_the_code_transformers_runs():
    """A minilm bundle's model.json `config` builds its BERT: only the architecture reaches transformers, never a
    key that chooses code (attn_implementation: a kernel fetched from the Hugging Face Hub)."""
    pytest.importorskip("transformers")
    from sw2.models import build

    tiny = dict(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    for key in ("attn_implementation", "_attn_implementation"):
        model = build("minilm", {"vocab": 40, "n_out": 2, "config": {**tiny, key: "kernels-community/flash-attn"}})
        assert model.encoder.config._attn_implementation in ("eager", "sdpa")
        assert model.encoder.config.hidden_size == 8


def test_a_graph_setting_onnx_runtime_session_options_is_refused():
    onnx = pytest.importorskip("onnx")
    from sw2.runtime.self_contained import check_graph

    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    onnx.helper.set_model_props(model, {"ort_config": '{"session_options": {"enable_profiling": 1}}'})
    with pytest.raises(sw2.UserError, match=r"^m\.onnx: its metadata sets ONNX Runtime's session options"):
        check_graph(model.SerializeToString(), "m.onnx")
