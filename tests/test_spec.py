"""The spec: defaults, did-you-mean for unknown keys, one-line errors naming the field."""

from __future__ import annotations

import json

import pytest

from sw2.errors import UserError
from sw2.spec import Spec, load_spec, parse_spec
from tests.conftest import sw2_here

BASE = {"data": {"source": "package", "name": "digits"}}


def test_defaults_fill_every_field():
    spec = parse_spec(BASE)
    assert spec.train.optimizer == "adamw" and spec.train.schedule == "onecycle"
    assert spec.data.split.val == 0.1 and spec.model.name == "auto"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**BASE, "trian": {}}, "unknown key 'trian'; did you mean 'train'?"),
        ({**BASE, "train": {"learning_rate": 0.1}}, "unknown key 'train.learning_rate'"),
        ({**BASE, "train": {"epoch": 3}}, "did you mean 'epochs'?"),
        ({**BASE, "train": {"lr": "fast"}}, "train.lr:"),
        ({**BASE, "train": {"optimizer": "adamax"}}, "train.optimizer:"),
        ({**BASE, "task": "cluster"}, "task:"),
        ({**BASE, "metrics": ["accuracy", "auc"]}, "metrics.1: unknown metric 'auc'"),
        ({**BASE, "task": "classify", "metrics": ["accuracy", "r2"]}, "metrics: 'r2' is not a metric of task classify"),
        ({"data": {"source": "package"}}, "data.name is required"),
        ({}, "'data' is required"),
    ],
)
def test_bad_specs_name_the_field(raw, expected):
    with pytest.raises(UserError) as err:
        parse_spec(raw, "s.yaml")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_yaml_gives_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  source: csv\n   path: x.csv\n")
    with pytest.raises(UserError, match=r"malformed YAML at line 3"):
        load_spec(path)


def test_schema_lists_defaults():
    res = sw2_here("spec", "--schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    assert schema["$defs"]["TrainSpec"]["properties"]["lr"]["default"] == Spec.model_fields["train"].default.lr


def test_spec_resolves_with_defaults(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("data: {source: package, name: iris}\ntask: classify\n")
    res = sw2_here("spec", str(path))
    assert res.returncode == 0 and "batch_size: 128" in res.stdout
