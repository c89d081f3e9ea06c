"""The muon optimizer: orthogonal steps for conv kernels, plain Nesterov SGD for the rest, a clear error
for models without conv kernels, and a real conv net trained with it."""

from __future__ import annotations

import copy

import torch
from torch import nn

import sw2
from sw2.engine.muon import Muon, orthogonalise
from sw2.engine.optim import make_optimizer
from sw2.spec import TrainSpec
from tests.conftest import sw2_here, write_spec


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))


def loss_of(net: nn.Module, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)
    return nn.functional.cross_entropy(net(x), y)


def test_orthogonalise_flattens_the_spectrum():
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(16, 16))
    v, _ = torch.linalg.qr(torch.randn(72, 16))
    g = u @ torch.diag(torch.logspace(-2, 0, 16)) @ v.T  # singular values from 0.01 to 1
    s = torch.linalg.svdvals(orthogonalise(g, steps=5))
    assert s.min() > 0.5 and s.max() < 1.5, s
    narrower = u @ torch.diag(torch.logspace(-1, 0, 16)) @ v.T  # 0.1 to 1: 3 steps, as the optimizer runs
    s = torch.linalg.svdvals(orthogonalise(narrower, steps=3))
    assert s.min() > 0.5 and s.max() < 1.5, s
    assert torch.allclose(orthogonalise(g.T, steps=5), orthogonalise(g, steps=5).T, atol=1e-5)


def test_muon_groups_and_sgd_groups():
    train = TrainSpec(optimizer="muon", lr=0.1, muon_lr=0.05, momentum=0.8, weight_decay=0.01)
    net, ref = small_net(), small_net()
    opt = make_optimizer(net, train)
    assert isinstance(opt, Muon)
    kernels = [g for g in opt.param_groups if g["muon"]]
    assert len(kernels) == 1 and kernels[0]["params"][0] is net[0].weight and kernels[0]["weight_decay"] == 0
    assert abs(kernels[0]["lr"] - 0.05) < 1e-12

    # everything but the kernel steps exactly as torch's Nesterov SGD with the same groups
    ref_groups = [
        {"params": [ref[1].bias], "weight_decay": 0.0},
        {"params": [ref[3].weight], "weight_decay": 0.01},
        {"params": [ref[3].bias], "weight_decay": 0.0},
    ]
    ref_opt = torch.optim.SGD(ref_groups, lr=0.1, momentum=0.8, nesterov=True)
    for step in range(3):
        g = torch.Generator().manual_seed(step)
        grads = [torch.randn(p.shape, generator=g) for p in net.parameters()]
        before = net[0].weight.detach().clone()
        for model, o in ((net, opt), (ref, ref_opt)):
            for p, grad in zip(model.parameters(), grads):
                p.grad = grad.clone()
            o.step()
        assert torch.allclose(net[3].weight, ref[3].weight, atol=1e-6)
        assert torch.allclose(net[1].bias, ref[1].bias, atol=1e-6)
    # the kernel was rescaled to norm sqrt(out channels), then moved by about lr along each direction
    w = net[0].weight.detach()
    rescaled = before * (8**0.5 / before.norm())
    step_taken = ((rescaled - w) / 0.05).reshape(8, -1)
    s = torch.linalg.svdvals(step_taken)
    assert s.min() > 0.3 and s.max() < 1.6, s
    assert abs(w.norm() - 8**0.5) < 0.3


def test_first_muon_step_is_the_reference_step():
    """airbench94_muon's step: rescale the kernel to norm sqrt(out), subtract lr x orthogonalised momentum."""
    net = small_net()
    opt = make_optimizer(net, TrainSpec(optimizer="muon", lr=0.1, muon_lr=0.05, momentum=0.8))
    loss_of(net, 0).backward()
    w, g = net[0].weight.detach().clone(), net[0].weight.grad.clone()
    opt.step()
    # first step: buffer = g, Nesterov direction g + 0.8 g (orthogonalising ignores the scale)
    expected = w * (8**0.5 / w.norm()) - 0.05 * orthogonalise((1.8 * g).reshape(8, -1)).reshape(g.shape)
    assert torch.allclose(net[0].weight, expected, atol=1e-6)


def test_depthwise_kernels_stay_with_sgd():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, groups=8), nn.BatchNorm2d(8))
    opt = make_optimizer(net, TrainSpec(optimizer="muon", lr=0.1))
    muon = [p for g in opt.param_groups if g["muon"] for p in g["params"]]
    assert len(muon) == 1 and muon[0] is net[0].weight


def test_muon_state_round_trips():
    train = TrainSpec(optimizer="muon", lr=0.1, momentum=0.8)
    net = small_net()
    opt = make_optimizer(net, train)
    for step in range(2):
        opt.zero_grad()
        loss_of(net, step).backward()
        opt.step()
    twin = copy.deepcopy(net)
    twin_opt = make_optimizer(twin, train)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # as from a checkpoint file
    for model, o in ((net, opt), (twin, twin_opt)):
        o.zero_grad()
        loss_of(model, 9).backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters()))


def test_muon_trains_a_conv_net_on_digits(tmp_path):
    spec = {
        "data": {"source": "package", "name": "digits", "split": {"val": 0.1, "test": 0.2, "seed": 0}},
        "model": {"name": "convnet", "widths": [32, 64]},
        "train": {
            "epochs": 12,
            "batch_size": 64,
            "optimizer": "muon",
            "lr": 0.05,
            "muon_lr": 0.05,
            "schedule": "onecycle",
            "warmup": 0.0,
            "label_smoothing": 0.1,
        },
        "augment": {"translate": 1},
    }
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False)
    assert bundle.metrics["test"]["accuracy"] >= 0.95
    assert "optimizer: muon" in (bundle.path / "spec.yaml").read_text()


def test_lr_finder_sweeps_the_sgd_lr_with_muon_kernels_at_muon_lr(tmp_path, monkeypatch):
    from sw2.preflight import lr_finder

    seen = []

    class Spy(lr_finder.SweepStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.optimizer)

    spec = {
        "data": {"source": "package", "name": "digits", "split": {"val": 0.1, "test": 0.2, "seed": 0}},
        "model": {"name": "convnet", "widths": [16, 32]},
        "train": {"epochs": 1, "batch_size": 64, "optimizer": "muon", "lr": "auto", "muon_lr": 0.05},
    }
    monkeypatch.setattr(lr_finder, "SweepStep", Spy)
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False)
    kernels = [g for g in seen[0].param_groups if g["muon"]]
    assert kernels and all(abs(g["lr"] - 0.05) < 1e-9 for g in kernels)  # after the whole sweep
    lr = bundle.spec.train.lr
    assert isinstance(lr, float) and 5e-4 < lr < 5e-3  # the valley: 0.0015 when measured (0.0018-0.0021 other seeds)


def test_muon_without_conv_kernels_is_a_clear_error(tmp_path):
    spec = {
        "data": {"source": "package", "name": "iris"},
        "model": {"name": "mlp"},
        "train": {"epochs": 2, "optimizer": "muon"},
    }
    write_spec(tmp_path, spec)
    res = sw2_here("train", "spec.yaml", "--quiet", "--out", "b", cwd=tmp_path)
    assert res.returncode == 2
    assert "train.optimizer: muon" in res.stderr and "nesterov" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "b").exists()
