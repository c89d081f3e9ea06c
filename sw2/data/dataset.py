"""prepare(): spec -> cleaned, split, encoded tensors ready for the engine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sw2.data.clean import clean, nonfinite
from sw2.data.columns import column_kinds, wrong_task
from sw2.data.encode import Encoder
from sw2.data.examples import Examples
from sw2.data.sources import load, read_table, resolve
from sw2.data.split import carve, not_inputs, sample
from sw2.errors import UserError
from sw2.spec import Spec

if TYPE_CHECKING:
    from sw2.tasks import Task

MIN_PER_CLASS = 2  # training rows per class that a split must leave


@dataclass
class TensorSet:
    """Encoded inputs (name -> tensor, all of the same length) and the encoded target."""

    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def take(self, idx: np.ndarray) -> TensorSet:
        t = torch.from_numpy(np.asarray(idx))
        return TensorSet({k: v[t] for k, v in self.inputs.items()}, self.target[t], self.ids[idx])

    def join(self, other: TensorSet) -> TensorSet:
        """This set followed by `other` (same encoder)."""
        inputs = {k: torch.cat([v, other.inputs[k]]) for k, v in self.inputs.items()}
        return TensorSet(inputs, torch.cat([self.target, other.target]), np.concatenate([self.ids, other.ids]))


@dataclass
class Prepared:
    encoder: Encoder
    train: TensorSet
    val: TensorSet
    test: TensorSet
    raw_test: Examples
    report: dict[str, Any]
    fingerprint: str
    raw_train: Examples  # cleaned, before encoding: for the data checks
    raw_val: Examples
    scored_val: Examples  # the raw examples that `val` holds (a class train lacks is dropped when encoding)


def _file(root: Path, rel: str | None, otherwise: str) -> str:
    """The data file a spec's path names, for messages (`otherwise` when it names none)."""
    return str(root / rel) if rel else otherwise


def fingerprint(ex: Examples) -> str:
    """A content hash of inputs and targets, independent of file names and order of columns' dtypes."""
    h = hashlib.sha256()
    h.update(np.sort(ex.row_hashes()).tobytes())
    h.update(str(sorted(map(str, ex.target))).encode())
    return h.hexdigest()


def encode(encoder: Encoder, ex: Examples) -> TensorSet:
    return TensorSet(encoder.inputs(ex), encoder.target(ex.target), ex.ids)


def drop_unseen(ts: TensorSet, ex: Examples, task: Task) -> tuple[TensorSet, Examples, int]:
    """Drop the examples `task` cannot score (e.g. of a class unseen in training), and count them."""
    keep = task.scorable(ts.target).numpy()
    idx = np.flatnonzero(keep)
    return (
        ts.take(idx),
        ex.take(idx),
        int((~keep).sum()),
    )


def exclude(train: Examples, path: Path, report: dict[str, Any]) -> Examples:
    """Drop the training examples listed in `path`: a CSV with an `id` column (e.g. the doctor's
    label_errors.csv, where only rows with flagged = True count if that column is there)."""
    listed = read_table(path)
    if "id" not in listed.columns:
        raise UserError(f"{path}: data.exclude needs a CSV with an 'id' column (as sw2 doctor's label_errors.csv)")
    if "flagged" in listed.columns:
        listed = listed[listed["flagged"].astype(str).str.lower().isin(["true", "1"])]
    drop = np.isin(train.ids.astype(str), listed["id"].astype(str).to_numpy())
    report["excluded"] = int(drop.sum())
    return train.take(np.flatnonzero(~drop))


def _enough_to_train(train: Examples, before: Examples, spec: Spec, own_test: bool, task: Task) -> None:
    """The spec's split must leave MIN_PER_CLASS training rows per class (or in all, without classes);
    `own_test`: the data brings its test split, so only val was carved out."""
    classes = task.target_groups(before.target)
    if len(train) < MIN_PER_CLASS * classes:
        advice = wrong_task(before.target, spec.target, task.name) if task.discrete else None
        if advice:  # the task, not the split, is what to change
            raise UserError(advice)
        split = spec.data.split
        carved = f"val {split.val:g}" if own_test else f"val {split.val:g} and test {split.test:g}"
        fields = "data.split.val" if own_test else "data.split.val / data.split.test"
        raise UserError(
            f"data.split: {carved} leave {len(train)} of {len(before)} rows to train on, fewer than "
            f"{MIN_PER_CLASS} per class ({classes} classes); lower {fields}"
        )


def prepare(spec: Spec, root: Path, task: Task) -> Prepared:
    """The spec's data for `task` (one that learns a target column): loaded, cleaned, split (stratified where
    the task says) and encoded by an encoder fitted on the training split, with the task's target codec."""
    loaded = load(spec.data, root, spec.target)
    train, test, report = clean(loaded.train, loaded.test)
    if not len(train):
        raise UserError(
            f"{loaded.description}: the target column '{spec.target}' is empty in every row; fill it, or set "
            f"target: to the column to predict"
        )
    refuse = spec.data.nonfinite == "refuse"
    train, report["nonfinite_values"] = nonfinite(train, refuse, _file(root, spec.data.path, loaded.description))
    if test is not None:
        test, report["nonfinite_values_test"] = nonfinite(test, refuse, _file(root, spec.data.test_path, "test data"))
    if spec.data.exclude:
        train = exclude(train, resolve(root, spec.data.exclude), report)
    report["source"] = loaded.description
    stratify = task.discrete
    split = spec.data.split
    before, own_test = train, test is not None
    if test is None:  # at random, in time order (split.by) or by groups (split.group): sw2.data.split
        test, val, train = carve(train, split, [split.test, split.val], stratify)
        # split.test was carved after de-duplication, so no test row repeats a train row
    else:
        val, train = carve(train, split, [split.val], stratify)
    _enough_to_train(train, before, spec, own_test, task)
    if spec.data.limit is not None and spec.data.limit < len(train):  # a seeded (stratified) sample, or the latest
        train = sample(train, split, spec.data.limit, stratify)
    data_print = fingerprint(train)

    codec = task.target_codec(train.target, spec.target)
    inputs = not_inputs(train, split, spec.inputs)  # a group id is no input unless inputs: names it
    kinds = column_kinds(inputs.frame, spec.inputs, spec.target) if inputs.frame is not None else []
    encoder = Encoder.fit(inputs, codec, kinds, spec.text, spec.model.whole_text)
    val_set, scored_val, unseen_val = drop_unseen(encode(encoder, val), val, task)
    test_set, test, unseen_test = drop_unseen(encode(encoder, test), test, task)
    report.update(
        train=len(train),
        val=len(val_set),
        test=len(test_set),
        dropped_unseen_labels_val=unseen_val,
        dropped_unseen_labels_test=unseen_test,
        columns=encoder.columns,  # each input column's kind and why (sw2.data.columns)
    )
    return Prepared(
        encoder, encode(encoder, train), val_set, test_set, test, report, data_print, train, val, scored_val
    )
