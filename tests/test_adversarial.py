"""Adversarial robustness: `sw2 attack` (FGSM / PGD in an L-infinity ball) on the demo's digits model and a table
model, recorded in the bundle and its report; `train.adversarial` trains a model that holds up better under the
same attack; bad settings are one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

import sw2
from tests.conftest import ROOT, sw2_here, write_spec


@pytest.fixture
def digits_copy(digits, tmp_path):
    """The demo's bundle, copied: `sw2 attack` writes its record into the bundle it attacks."""
    return sw2.load(shutil.copytree(digits.path, tmp_path / "digits"))


def test_attack_lowers_a_standard_models_accuracy_and_is_recorded(digits_copy):
    b = digits_copy
    pgd = sw2.attack(b, method="pgd", eps=0.1, steps=10)
    assert pgd["data"] == "test split" and pgd["n"] > 300
    assert pgd["clean"]["accuracy"] == pytest.approx(b.metrics["test"]["accuracy"], abs=0.02)
    assert pgd["attacked"]["accuracy"] < pgd["clean"]["accuracy"] - 0.3, pgd
    fgsm = sw2.attack(b, method="fgsm", eps=0.1)
    assert pgd["attacked"]["accuracy"] <= fgsm["attacked"]["accuracy"] + 0.02  # more steps: no weaker
    record = json.loads((b.path / "attack.json").read_text())
    assert record["method"] == "fgsm" and (b.path / "attack_examples.png").read_bytes()[:4] == b"\x89PNG"
    page = sw2.report(b).read_text()
    assert "Robustness under attack" in page and "attacked" in page


def test_adversarial_training_holds_up_better_under_the_same_attack(digits, tmp_path):
    spec = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    spec["train"] |= {"epochs": 12, "adversarial": {"method": "fgsm", "eps": 0.1}}
    robust = sw2.train(write_spec(tmp_path, spec), tmp_path / "robust", check=False)
    standard = shutil.copytree(digits.path, tmp_path / "standard")
    attacked = {name: sw2.attack(b, eps=0.1, steps=10) for name, b in (("robust", robust), ("standard", standard))}
    assert attacked["robust"]["clean"]["accuracy"] > 0.85, attacked
    assert attacked["robust"]["attacked"]["accuracy"] > attacked["standard"]["attacked"]["accuracy"] + 0.2, attacked


def test_a_table_model_is_attacked_in_standardised_units(penguins, tmp_path):
    b = shutil.copytree(penguins, tmp_path / "penguins")
    record = sw2.attack(b, eps=1.0, steps=10)
    assert record["attacked"]["accuracy"] < record["clean"]["accuracy"], record
    assert not (b / "attack_examples.png").exists()  # no images to show


def test_bad_attack_settings_are_one_line_errors(digits_copy, tmp_path, language_model):
    for args, says in ((["--eps", "0"], "--eps"), (["--method", "cw"], "--method"), (["--steps", "0"], "--steps")):
        r = sw2_here("attack", str(digits_copy.path), *args)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = sw2_here("attack", str(language_model))
    assert r.returncode == 2 and "classify, regress" in r.stderr, r.stderr
    assert not (digits_copy.path / "attack.json").exists()
    bad = write_spec(tmp_path, {"data": {"source": "package", "name": "digits"}, "task": "classify",
                                "train": {"adversarial": {"eps": -1}}})  # fmt: skip
    r = sw2_here("train", str(bad), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "train.adversarial.eps" in r.stderr and not (tmp_path / "out").exists(), r.stderr
