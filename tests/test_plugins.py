"""Registries are the one list: a model, an optimizer or a schedule registered in one place is at once a valid
spec choice (with "did you mean" when misspelt), listed in the JSON schema, and trained; each model's own
options are checked by name, round-trip through a dumped spec, and `model: auto` keeps taking them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml
from pydantic import Field
from torch import nn

import sw2
from sw2.errors import UserError
from sw2.models.base import Model
from sw2.plugins import MODELS, OPTIMIZERS, SCHEDULES
from sw2.spec import AutoModel, ModelOptions, dump_spec, json_schema, parse_spec
from tests.conftest import ROOT, write_spec

IRIS = {"data": {"source": "package", "name": "iris"}, "model": {"name": "mlp"}}


class TinyOptions(ModelOptions):
    """tiny: one linear layer on the numeric columns (this test's plug-in)."""

    gain: float = Field(1.0, gt=0, description="multiplies the inputs")


class Tiny(Model):
    options = TinyOptions

    def __init__(self, n_num: int, n_out: int, gain: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.gain = gain
        self.head = nn.Linear(n_num, n_out)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(batch["num"] * self.gain)

    @staticmethod
    def configure(options: TinyOptions, encoder: object, n_train: int) -> dict[str, object]:
        return {"n_num": len(encoder.numeric), "n_out": encoder.n_outputs, "gain": options.gain}


calls: list[str] = []


def halving_sgd(model: nn.Module, groups: list[dict], train: object) -> torch.optim.Optimizer:
    calls.append("optimizer")
    return torch.optim.SGD(groups, lr=float(train.lr) / 2)


def linear_down(train: object, p: float) -> float:
    calls.append("schedule")
    return 1.0 - p


@pytest.fixture
def registered():
    """The test's model, optimizer and schedule, each registered as a plug-in file would, then forgotten."""
    MODELS.register("tiny")(Tiny)
    OPTIMIZERS.register("halving_sgd")(halving_sgd)
    SCHEDULES.register("linear_down")(linear_down)
    calls.clear()
    yield
    MODELS.unregister("tiny")
    OPTIMIZERS.unregister("halving_sgd")
    SCHEDULES.unregister("linear_down")


def error_of(raw: dict) -> str:
    with pytest.raises(UserError) as err:
        parse_spec(raw, "s.yaml")
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"name": "convnet", "widht": [8]}, "unknown key 'model.widht'; did you mean 'widths'?"),
        ({"name": "mlp", "depth": 2}, "unknown key 'model.depth'"),  # convnet's option, not mlp's
        ({"name": "transformer", "head": 2}, "did you mean 'heads'?"),
        ({"widthz": [8]}, "unknown key 'model.widthz'; did you mean 'widths'?"),  # auto: no model has it
        ({"name": "convnett"}, "model.name: unknown model 'convnett'; did you mean 'convnet'?"),
        ({"name": "mobilenet", "finetune": "lora"}, "model.finetune:"),  # minilm's choice only
    ],
)
def test_a_models_options_are_its_own(model, expected):
    assert expected in error_of({**IRIS, "model": model})


def test_plugin_names_are_checked_with_did_you_mean():
    assert "train.optimizer: unknown optimizer 'adamx'; did you mean 'adam'?" in error_of(
        {**IRIS, "train": {"optimizer": "adamx"}}
    )
    assert "did you mean 'cosine'?" in error_of({**IRIS, "train": {"schedule": "cosin"}})
    assert "did you mean 'parquet'?" in error_of({"data": {"source": "parqet", "path": "x.parquet"}})


def test_auto_takes_any_models_option_and_the_picked_model_checks_it():
    spec = parse_spec({**IRIS, "model": {"widths": [16], "depth": 2}})
    assert isinstance(spec.model, AutoModel)
    assert spec.model.resolved("convnet").depth == 2
    with pytest.raises(UserError, match=r"model.depth: auto picked mlp .* no option 'depth'"):
        spec.model.resolved("mlp")


@pytest.mark.parametrize(
    "model", [{"name": "convnet", "widths": [8, 16], "whiten": 4}, {"name": "auto", "widths": [8]}, {"name": "bag"}]
)
def test_a_dumped_spec_keeps_the_models_own_options(model):
    spec = parse_spec({**IRIS, "model": model})
    dumped = yaml.safe_load(dump_spec(spec))
    assert {k: dumped["model"][k] for k in model} == model
    assert parse_spec(dumped) == spec


def test_options_built_in_python_are_named_by_their_class():
    from sw2.models.convnet import ConvNetOptions
    from sw2.spec import DataSpec, Spec

    spec = Spec(data=DataSpec(source="package", name="digits"), model=ConvNetOptions(widths=[8]))
    assert spec.model.name == "convnet" and parse_spec(yaml.safe_load(dump_spec(spec))) == spec


def test_import_of_the_spec_imports_no_plugin():
    code = "import sys, sw2.spec; sys.exit('torch' in sys.modules or 'sw2.models' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_schema_lists_the_registered_choices(registered):
    schema = json_schema()
    train = schema["$defs"]["TrainSpec"]["properties"]
    assert {"adamw", "muon", "halving_sgd"} <= set(train["optimizer"]["enum"])
    assert {"onecycle", "linear_down"} <= set(train["schedule"]["enum"])
    assert {"auto", "csv", "package"} <= set(schema["$defs"]["DataSpec"]["properties"]["source"]["enum"])
    models = {m["properties"]["name"]["const"]: m for m in schema["properties"]["model"]["oneOf"]}
    assert {"auto", "convnet", "gpt", "tiny"} <= set(models)
    assert "gain" in models["tiny"]["properties"] and "whiten" in models["convnet"]["properties"]
    assert models["tiny"]["required"] == ["name"] and not models["auto"]["required"]  # no name: auto


def test_a_model_optimizer_and_schedule_registered_in_a_test_train(registered, tmp_path):
    assert "unknown key 'model.gian'; did you mean 'gain'?" in error_of({**IRIS, "model": {"name": "tiny", "gian": 2}})
    spec = {
        **IRIS,
        "model": {"name": "tiny", "gain": 2.0},
        "train": {"epochs": 20, "batch_size": 16, "lr": 0.2, "optimizer": "halving_sgd", "schedule": "linear_down"},
    }
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False)
    assert {"optimizer", "schedule"} <= set(calls)
    assert bundle.spec.model == TinyOptions(name="tiny", gain=2.0)
    assert bundle.metrics["test"]["accuracy"] >= 0.8
