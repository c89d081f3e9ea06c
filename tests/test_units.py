"""Small pieces: schedules, splits, augmentation, metrics, IDX reading, the malloc tuning, written files' modes."""

from __future__ import annotations

import gzip
import os
import stat

import numpy as np
import pytest
import torch

from sw2.data.idx import read_idx
from sw2.data.split import split_indices
from sw2.engine.augment import augment
from sw2.engine.hardware import tune_malloc
from sw2.engine.optim import lr_factor
from sw2.engine.prune import EasyPruner
from sw2.errors import UserError
from sw2.evaluation.metrics import classification
from sw2.files import umask, write_file
from sw2.spec import AugmentSpec, TrainSpec


def test_onecycle_warms_up_then_anneals():
    t = TrainSpec(schedule="onecycle", warmup=0.2)
    assert lr_factor(t, 0.0) == 0.0 and lr_factor(t, 0.2) == pytest.approx(1.0)
    assert lr_factor(t, 0.6) == pytest.approx(0.5) and lr_factor(t, 1.0) == 0.0


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine"])
def test_schedules_after_warmup(schedule):
    t = TrainSpec(schedule=schedule, warmup=0.1, step_every=0.5, step_gamma=0.1)
    assert lr_factor(t, 0.05) == pytest.approx(0.5)
    end = lr_factor(t, 0.99)
    assert {"constant": end == 1.0, "step": end == pytest.approx(0.1), "cosine": end < 0.01}[schedule]


def test_stratified_split_is_deterministic_and_keeps_proportions():
    y = np.array([0] * 80 + [1] * 20)
    a = split_indices(y, [0.25], seed=3, stratify=True)
    b = split_indices(y, [0.25], seed=3, stratify=True)
    assert all((x == z).all() for x, z in zip(a, b))
    assert (y[a[0]] == 1).sum() == 5 and len(a[0]) == 25
    assert len(np.intersect1d(a[0], a[1])) == 0 and len(a[0]) + len(a[1]) == 100


def test_augment_is_batched_and_seeded():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    spec = AugmentSpec(flip=True, translate=2, cutout=3)
    a = augment(x, spec, torch.Generator().manual_seed(0))
    b = augment(x, spec, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, x)


def test_classification_metrics():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    m = classification(probs, torch.tensor([0, 1, 1, 1]), ["a", "b"])
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 0], [1, 2]]
    assert m["per_class"][1]["recall"] == pytest.approx(2 / 3, abs=1e-4)


def test_idx_reader(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in data.shape)
    (tmp_path / "x.gz").write_bytes(gzip.compress(header + data.tobytes()))
    assert (read_idx(tmp_path / "x.gz") == data).all()
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(UserError, match="bad magic"):
        read_idx(tmp_path / "bad")


def test_malloc_tuning_runs():
    assert tune_malloc() in (True, False)


@pytest.mark.parametrize("size", [(7, 7), (8, 8), (15, 8), (31, 31)])
def test_conv_before_a_pool_computes_only_what_the_pool_keeps(size):
    """`for_pool` trims an odd map's last row/column from the conv, not from the result: pooled outputs and
    gradients equal the 'same' conv's."""
    import copy

    import torch.nn.functional as F

    from sw2.models.convnet import Conv

    torch.manual_seed(0)
    trimmed = Conv(5, 8, for_pool=True)
    full = copy.deepcopy(trimmed)
    full.for_pool = False
    x = torch.randn(3, 5, *size).contiguous(memory_format=torch.channels_last)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    out = [F.max_pool2d(conv(xi), 2) for conv, xi in zip((trimmed, full), xs)]
    torch.testing.assert_close(out[0], out[1])
    assert trimmed(x).shape[-2:] == (size[0] // 2 * 2, size[1] // 2 * 2)
    for o in out:
        o.square().sum().backward()
    torch.testing.assert_close(trimmed.weight.grad, full.weight.grad)
    torch.testing.assert_close(xs[0].grad, xs[1].grad)  # saliency maps use input gradients


def test_convnet_with_pool_trimmed_convs_matches_same_convs():
    """A whitened CIFAR-sized net (maps 31, 15, 7, 3): the trimmed convs change no output."""
    from sw2.models.convnet import Conv, ConvNet

    torch.manual_seed(0)
    net = ConvNet([3, 32, 32], 10, [127.0] * 3, [64.0] * 3, [8, 16, 32], depth=2, whiten=12).eval()
    image = {"image": torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)}
    with torch.no_grad():
        trimmed = net(image)
        for m in net.modules():
            if isinstance(m, Conv):
                m.for_pool = False
        torch.testing.assert_close(trimmed, net(image))


def test_whitening_stem_whitens_training_patches():
    from sw2.models.convnet import ConvNet

    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 256, (200, 3, 12, 12), generator=g).float()
    images = (base + base.roll(1, 3) + base.roll(1, 2)).div(3).to(torch.uint8)  # neighbouring pixels correlate
    net = ConvNet([3, 12, 12], 2, [127.0] * 3, [40.0] * 3, [8], whiten=24, channels_last=False)
    net.init_from_data({"image": images})
    filters = net.stem.filters
    assert "stem.filters" not in dict(net.named_parameters()), "the whitening filters are frozen"
    out = torch.nn.functional.conv2d(net.normalise(images), filters[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(12), atol=0.05), "whitened patches must have identity covariance"
    assert torch.equal(filters[12:], -filters[:12])


def test_flip_translate_tta_averages_six_views():
    from sw2.engine.predict import predict

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    model = lambda b: net(b["image"].float())  # noqa: E731
    model.eval = lambda: None
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    pad = torch.nn.functional.pad(x.float(), (1, 1, 1, 1), mode="reflect")

    def mirrored(v):
        return 0.5 * (net(v.float()) + net(v.float().flip(3)))

    expected = 0.5 * mirrored(x) + 0.25 * (mirrored(pad[..., :8, :8]) + mirrored(pad[..., 2:, 2:]))
    got = predict(model, {"image": x}, tta="flip_translate", device=torch.device("cpu"))
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(predict(model, {"image": x}, tta="flip", device=torch.device("cpu")), mirrored(x), atol=1e-5)


def test_lookahead_ends_on_slow_weights():
    from sw2.engine.lookahead import Lookahead

    net = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    slow = Lookahead(net, every=1)
    with torch.no_grad():
        net.weight.fill_(1.0)
    slow.step(net, 1, progress=1.0)  # decay 0.95: the slow copy moves 5% of the way
    assert torch.allclose(net.weight, torch.full((1, 2), 0.05))
    with torch.no_grad():
        net.weight.fill_(7.0)
    slow.finish(net)
    assert torch.allclose(net.weight, torch.full((1, 2), 0.05))


def test_whitening_shift_stops_learning_at_its_share_of_training(tmp_path, monkeypatch):
    """The loop tells the convnet how far training is; past `whiten_shift_until` the stem's shift is frozen."""
    import sw2
    from sw2.models.convnet import ConvNet
    from tests.conftest import write_spec

    net = ConvNet([1, 8, 8], 10, [8.0], [4.0], [16], whiten=8, whiten_shift_until=0.3)
    net.set_progress(0.29)
    assert net.stem.shift.requires_grad
    net.set_progress(0.3)
    assert not net.stem.shift.requires_grad
    seen: list[tuple[float, torch.Tensor]] = []  # (progress, the shift before that step)
    original = ConvNet.set_progress

    def recording(self: ConvNet, progress: float) -> None:
        seen.append((progress, self.stem.shift.detach().clone()))
        original(self, progress)

    monkeypatch.setattr(ConvNet, "set_progress", recording)
    spec = {
        "data": {"source": "package", "name": "digits", "split": {"val": 0.1, "test": 0.2, "seed": 0}},
        "model": {"name": "convnet", "widths": [16], "whiten": 8, "whiten_shift_until": 0.5},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": "nesterov", "lr": 0.05},
    }
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False, check=False)
    during = [s for p, s in seen if p < 0.5]
    after = [s for p, s in seen if p >= 0.5]
    assert len(during) > 2 and len(after) > 2
    assert not torch.equal(during[1], during[-1]), "the shift learns during the first half"
    assert all(torch.equal(s, after[0]) for s in after), "and stays put after"
    assert torch.equal(bundle.model.stem.shift.detach(), after[0])


def test_whitening_shift_trains_like_the_norm_shifts():
    from sw2.engine.optim import make_optimizer
    from sw2.models.convnet import ConvNet
    from sw2.spec import TrainSpec

    net = ConvNet([3, 8, 8], 10, [127.0] * 3, [40.0] * 3, [8], whiten=12)
    opt = make_optimizer(net, TrainSpec(optimizer="nesterov", lr=0.1, norm_lr_scale=64, weight_decay=1e-3))
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    for shift in (net.stem.shift, net.body[2].bias):  # the stem's shift and a BN shift
        assert group_of[id(shift)]["lr_scale"] == 64 and group_of[id(shift)]["weight_decay"] == 0
    assert group_of[id(net.head.weight)]["lr_scale"] == 1 and group_of[id(net.head.weight)]["weight_decay"] == 1e-3
    spec = TrainSpec(optimizer="nesterov", lr=0.1, norm_lr_scale=64, weight_decay=1e-3, norm_weight_decay=2e-5)
    group_of = {id(p): g for g in make_optimizer(net, spec).param_groups for p in g["params"]}
    assert group_of[id(net.stem.shift)]["weight_decay"] == group_of[id(net.body[2].bias)]["weight_decay"] == 2e-5
    assert group_of[id(net.head.bias)]["weight_decay"] == 0, "biases outside norm layers never decay"


def test_pruner_drops_only_well_learned_examples_and_keeps_the_epoch_loss():
    n, gen, cpu = 1000, torch.Generator().manual_seed(0), torch.device("cpu")
    pruner = EasyPruner(n, rate=0.5, device=cpu)
    perm = torch.randperm(n, generator=gen)
    assert torch.equal(pruner.epoch(perm, gen, True, 10), perm), "no example has a score yet: all stay"

    losses = torch.rand(n, generator=gen)
    pruner.loss(losses[:800], torch.arange(800))  # the last 200 are never seen
    assert torch.equal(pruner.scores[:800], losses[:800]) and pruner.scores[800:].isnan().all()
    perm = torch.randperm(n, generator=gen)
    state = gen.get_state()
    kept = pruner.epoch(perm, gen, True, 10)
    after = gen.get_state()
    assert len(kept) % 10 == 0
    assert torch.equal(kept, perm[torch.isin(perm, kept)][: len(kept)]), "the permutation's order is kept"
    dropped = perm[~torch.isin(perm, kept)]
    easy = losses[:800] < losses[:800].mean()
    assert (pruner.weights[:800][easy] == 2).all() and (pruner.weights[:800][~easy] == 1).all()
    assert abs(len(dropped) - 0.5 * easy.sum().item()) < 60 + 10
    assert (pruner.weights[dropped] == 2).sum() >= len(dropped) - 9, "all but the trimmed tail were easy"
    gen.set_state(state)
    assert torch.equal(pruner.epoch(perm, gen, False, 10), perm), "pruning off"
    assert (pruner.weights == 1).all() and torch.equal(gen.get_state(), after), "the same draws either way"

    pruner.loss(losses[800:], torch.arange(800, n))
    epoch_losses = []
    for _ in range(200):  # an epoch's summed loss is in expectation the full data's
        kept = pruner.epoch(torch.randperm(n, generator=gen), gen, True, 1)
        epoch_losses.append(sum(pruner.loss(losses[batch], batch) * len(batch) for batch in kept.split(50)))
    assert torch.stack(epoch_losses).mean().item() == pytest.approx(losses.sum().item(), rel=0.01)


def test_require_all_turns_a_skip_into_a_failing_run(tmp_path):
    """The README's test command sets SW2_REQUIRE_ALL=1: a test skipped for a missing data set fails the run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT

    (tmp_path / "test_probe.py").write_text(
        "from tests.conftest import need_dataset\n\n"
        "def test_passes():\n    assert True\n\n"
        "def test_needs_data():\n    need_dataset('no-such-dataset')\n"
    )
    (tmp_path / "test_fine.py").write_text("def test_passes():\n    assert True\n")

    def run(path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "SW2_REQUIRE_ALL"}
        env |= {"SW2_REQUIRE_ALL": require} if require else {}
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "tests.conftest", "-p", "no:cacheprovider", str(path)]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    quick = run(tmp_path / "test_probe.py", None)
    assert quick.returncode == 0 and "1 passed, 1 skipped" in quick.stdout, quick.stdout
    strict = run(tmp_path / "test_probe.py", "1")
    assert strict.returncode == 1, strict.stdout
    assert "SW2_REQUIRE_ALL=1: 1 skipped, so this run fails" in strict.stdout
    assert "test_probe.py::test_needs_data: " in strict.stdout and "no-such-dataset is absent" in strict.stdout
    assert run(tmp_path / "test_fine.py", "1").returncode == 0  # nothing skipped: the strict run passes


def test_every_registered_model_keeps_the_model_contract():
    """The engine calls sw2/models/base.py's hooks on every model without asking whether it has them."""
    from sw2.models import MODELS, Model

    assert MODELS.names() and all(issubclass(MODELS.get(name), Model) for name in MODELS.names())


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_written_files_get_the_mode_the_umask_gives(tmp_path, monkeypatch):
    """Predictions, reports and JSON sw2 writes are as readable as any tool's output (not mkstemp's 0600)."""
    import sw2.files

    before = os.umask(0o022)
    try:
        write_file(tmp_path / "predictions.csv", "id,prediction\n")
        assert stat.S_IMODE((tmp_path / "predictions.csv").stat().st_mode) == 0o644
        os.umask(0o027)
        write_file(tmp_path / "predictions.csv", "id,prediction\n")  # a replaced file as well
        assert stat.S_IMODE((tmp_path / "predictions.csv").stat().st_mode) == 0o640
        assert umask() == 0o027 and os.umask(0o027) == 0o027, "read without changing it"
        monkeypatch.setattr(sw2.files, "open", lambda *a: open("/no/such/file"), raising=False)  # no /proc
        assert umask() == 0o027 and os.umask(0o027) == 0o027
    finally:
        os.umask(before)
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]
