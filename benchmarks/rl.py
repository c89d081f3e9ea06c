"""Reinforcement learning side by side: wall time to solve CartPole-v1 (a mean return of 475 over 20
deterministic episodes, benchmarks/rl_judge.py's judgement every 5,120 environment steps, its own time excluded)
for sw2's PPO and DQN (the RL Zoo's hyper-parameters: sw2's defaults), Stable-Baselines3's PPO and DQN with the
same Zoo hyper-parameters, and CleanRL's ppo.py with its own defaults; seeds interleaved, medians reported.

    python -m benchmarks.rl --bench-python /path/to/venv/bin/python [--seeds 1 2 3] [--learners ...]

--bench-python is an environment with stable-baselines3, gymnasium, tyro and tensorboard beside torch==2.13.0
(the peers are never sw2 dependencies). Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import machine, markdown_table

HERE = Path(__file__).parent
LEARNERS = ("sw2-ppo", "sb3-ppo", "cleanrl-ppo", "sw2-dqn", "sb3-dqn")


def sw2_run(algo: str, seed: int, out: Path) -> None:
    """sw2's own: `sw2.train` of {data: {env: CartPole-v1}, model: ALGO}, the time to the first judgement at 475
    (its history's clock, which counts training, the checkpoints and earlier judgements, less the judgements)."""
    import sw2

    # judged every 5,120 steps as the others are: the Zoo's PPO recipe's epoch already (1e5 / 20, in rollouts of
    # 256); DQN's 5e4 steps in 10 epochs of 20 rounds of 256
    model = {"name": algo} if algo == "ppo" else {"name": algo, "evaluations": 10}
    spec = {"name": f"rl-{algo}-{seed}", "data": {"env": "CartPole-v1"}, "model": model, "train": {"seed": seed}}
    with tempfile.TemporaryDirectory() as tmp:
        b = sw2.train(spec, Path(tmp) / "bundle", check=False)
        history = [json.loads(line) for line in (b.path / "history.jsonl").read_text().splitlines()]
    judged, curve, solved = 0.0, [], None
    for row in history:
        point = {"env_steps": row["env_steps"], "seconds": row["time"] - judged, "mean_return": row["val_metric"]}
        curve.append(point)
        judged += row["eval_seconds"]
        if solved is None and row["val_metric"] >= 475:
            solved = point
    record = {"learner": f"sw2-{algo}", "env": "CartPole-v1", "target": 475, "solved": solved, "curve": curve,
              "seconds": curve[-1]["seconds"],
              "vector": b.metrics["training"]["vector"]["mode"], "test": b.metrics["test"]["mean_return"]}  # fmt: skip
    out.write_text(json.dumps(record, indent=1))


def run(learner: str, seed: int, out: Path, bench_python: str) -> dict:
    if learner.startswith("sw2-"):
        command = [sys.executable, "-m", "benchmarks.rl", "--one", learner, "--seed", str(seed), "--out", str(out)]
    elif learner.startswith("sb3-"):
        command = [bench_python, str(HERE / "rl_sb3.py"), learner[4:], "CartPole-v1", str(seed), str(out)]
    else:
        command = [bench_python, str(HERE / "third_party" / "cleanrl_ppo.py"), "--seed", str(seed), "--no-cuda",
                   "--judge-out", str(out)]  # fmt: skip
    with tempfile.TemporaryDirectory() as cwd:  # CleanRL writes runs/ (TensorBoard) where it runs
        subprocess.run(command, cwd=cwd if learner.startswith("cleanrl") else HERE.parent, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-python", default=sys.executable)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=LEARNERS)
    ap.add_argument("--one", choices=("sw2-ppo", "sw2-dqn"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.one:
        sw2_run(args.one[4:], args.seed, Path(args.out))
        return
    print(machine())
    records: dict[str, list[dict]] = {name: [] for name in args.learners}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name in args.learners:
                rec = run(name, seed, Path(tmp) / f"{name}-{seed}.json", args.bench_python)
                records[name].append(rec)
                s = rec["solved"]
                best = max(p["mean_return"] for p in rec["curve"])
                said = (
                    f"solved at {s['env_steps']:,} steps in {s['seconds']:.2f} s" if s else f"not solved ({best:.1f})"
                )
                print(f"{name} seed {seed}: {said}", flush=True)
    rows = []
    for name, recs in records.items():
        solved = [r["solved"] for r in recs if r["solved"]]
        secs = [s["seconds"] for s in solved]
        steps = [s["env_steps"] for s in solved]
        rows.append({"learner": name, "solved": f"{len(solved)}/{len(recs)}",
                     "median seconds": f"{statistics.median(secs):.2f}" if secs else "-",
                     "seconds (each)": ", ".join(f"{x:.2f}" for x in secs),
                     "median steps": f"{statistics.median(steps):,.0f}" if steps else "-",
                     "steps/s": f"{statistics.median([a / b for a, b in zip(steps, secs)]):,.0f}" if secs else "-",
                     })  # fmt: skip
    print(markdown_table(rows, {k: k for k in rows[0]}))
    print(json.dumps(records))


if __name__ == "__main__":
    main()
