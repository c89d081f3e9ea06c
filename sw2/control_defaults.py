"""Task control's defaults: what a spec that names an environment and little else trains with.

The RL Baselines3 Zoo's tuned hyper-parameters (hyperparams/ppo.yml and dqn.yml of DLR-RM/rl-baselines3-zoo,
commit 22e3ff2, April 2026) for the environments it has them for, else Stable-Baselines3's defaults. `fill`
sets every field the spec leaves unset: the model's options, train.lr, batch_size, schedule (the Zoo's `lin_`
values: linear), warm-up (none) and epochs (`timesteps` over the judgements, `evaluations`), so the bundle's
spec.yaml says exactly what trained. Imports neither torch nor gymnasium (the spec reads it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sw2.spec import Spec

# model option or train field -> value; "lr"/"batch_size" go to train:, "linear": train.schedule linear
ZOO: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "CartPole-v1": {"n_envs": 8, "timesteps": 100_000, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8,
                        "gamma": 0.98, "n_epochs": 20, "ent_coef": 0.0, "lr": 0.001, "linear": True,
                        "clip_range": 0.2, "clip_decay": True},
        "Acrobot-v1": {"normalize": True, "n_envs": 16, "timesteps": 1_000_000, "n_steps": 256,
                       "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
        "MountainCar-v0": {"normalize": True, "n_envs": 16, "timesteps": 1_000_000, "n_steps": 16,
                           "gae_lambda": 0.98, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
        "Pendulum-v1": {"n_envs": 4, "timesteps": 100_000, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9,
                        "n_epochs": 10, "ent_coef": 0.0, "lr": 0.001, "clip_range": 0.2},
        "LunarLander-v3": {"n_envs": 16, "timesteps": 1_000_000, "n_steps": 1024, "batch_size": 64,
                           "gae_lambda": 0.98, "gamma": 0.999, "n_epochs": 4, "ent_coef": 0.01},
        "BipedalWalker-v3": {"normalize": True, "n_envs": 32, "timesteps": 5_000_000, "n_steps": 2048,
                             "batch_size": 64, "gae_lambda": 0.95, "gamma": 0.999, "n_epochs": 10,
                             "ent_coef": 0.0, "lr": 3e-4, "clip_range": 0.18},
    },
    "dqn": {
        "CartPole-v1": {"timesteps": 50_000, "lr": 2.3e-3, "batch_size": 64, "buffer_size": 100_000,
                        "learning_starts": 1000, "gamma": 0.99, "target_update_interval": 10, "train_freq": 256,
                        "gradient_steps": 128, "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
                        "hidden": [256, 256]},
        "MountainCar-v0": {"timesteps": 120_000, "lr": 4e-3, "batch_size": 128, "buffer_size": 10_000,
                           "learning_starts": 1000, "gamma": 0.98, "target_update_interval": 600,
                           "train_freq": 16, "gradient_steps": 8, "exploration_fraction": 0.2,
                           "exploration_final_eps": 0.07, "hidden": [256, 256]},
        "LunarLander-v3": {"timesteps": 100_000, "lr": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
                           "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250, "train_freq": 4,
                           "gradient_steps": -1, "exploration_fraction": 0.12, "exploration_final_eps": 0.1,
                           "hidden": [256, 256]},
        "Acrobot-v1": {"timesteps": 100_000, "lr": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
                       "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250, "train_freq": 4,
                       "gradient_steps": -1, "exploration_fraction": 0.12, "exploration_final_eps": 0.1,
                       "hidden": [256, 256]},
    },
}  # fmt: skip
# Stable-Baselines3's own defaults where the Zoo has no entry
SB3 = {"ppo": {"lr": 3e-4, "batch_size": 64}, "dqn": {"lr": 1e-4, "batch_size": 32}}


def rollout(options: Any) -> int:
    """Environment steps (all copies) between two updates: a PPO rollout, a DQN round of train_freq steps."""
    per_copy = options.n_steps if options.name == "ppo" else options.train_freq
    return options.n_envs * per_copy


def epoch_steps(options: Any) -> int:
    """Environment steps between two judgements: `timesteps / evaluations`, in whole rollouts."""
    unit = rollout(options)
    return unit * max(1, round(options.timesteps / options.evaluations / unit))


def fill(spec: Spec) -> Spec:
    """`spec` with the fields it leaves unset taken from the Zoo (or SB3) for its environment and algorithm."""
    from sw2.spec import AutoModel, model_options

    model, train = spec.model, spec.train
    algo = "ppo" if model.name == "auto" else model.name
    if model.name not in ("ppo", "dqn", "auto"):
        return spec  # check_control refuses it, naming the field
    table = {**SB3[algo], **ZOO[algo].get(spec.data.env or "", {})}
    given = (
        dict(model.model_extra or {})
        if isinstance(model, AutoModel)
        else model.model_dump(include=model.model_fields_set - {"name"})
    )
    cls = model_options(algo)
    options = {k: v for k, v in table.items() if k in cls.model_fields and k not in given}
    resolved = cls.model_validate({**options, **given, "name": algo})
    updates: dict[str, Any] = {}
    for key, value in (("lr", table["lr"]), ("batch_size", table["batch_size"]), ("warmup", 0.0),
                       ("schedule", "linear" if table.get("linear") else "constant")):  # fmt: skip
        if key not in train.model_fields_set:
            updates[key] = value
    if "epochs" not in train.model_fields_set:
        updates["epochs"] = round(resolved.timesteps / epoch_steps(resolved), 4)
    if updates:
        train = train.model_copy(update=updates)
        train.model_fields_set.update(updates)
    # set in place, unvalidated (both are): an assignment would run the spec's validators, this one among them
    spec.__dict__.update(model=resolved, train=train)
    return spec
