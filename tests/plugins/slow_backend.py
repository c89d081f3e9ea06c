"""A backend plug-in for the server's tests: the bundle's eager network, made slow on purpose.

`--backend slow` (with SW2_PLUGINS=slow_backend): every network call first waits $SW2_SLOW_S seconds, and
the first call (the server's warm-up) also waits until the file $SW2_SLOW_GATE exists, if that is set;
each later call waits while the file $SW2_SLOW_HOLD exists, if that is set, having first created
$SW2_SLOW_HOLD.held (the network is busy: requests that come now queue for its next call);
a call fails (a bug in a backend) while the file $SW2_SLOW_FAIL exists. So a test can hold /readyz at 503,
fill the queue, pass a deadline, batch requests, or cause a 500, deterministically.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from sw2.plugins import BACKENDS
from sw2.runtime import Runner
from sw2.runtime.torch_eager import torch_runner


@BACKENDS.register("slow")
def slow_runner(bundle: Any) -> Runner:
    run, calls = torch_runner(bundle), [0]
    gate, fail, hold = (os.environ.get(f"SW2_SLOW_{name}") for name in ("GATE", "FAIL", "HOLD"))

    def slow(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if calls[0] == 0 and gate:
            while not Path(gate).exists():
                time.sleep(0.05)
        if calls[0] > 0 and hold and Path(hold).exists():
            Path(f"{hold}.held").touch()
            while Path(hold).exists():
                time.sleep(0.01)
        calls[0] += 1
        if fail and Path(fail).exists():
            raise RuntimeError("the slow backend failed on purpose")
        time.sleep(float(os.environ.get("SW2_SLOW_S", "0")))
        return run(inputs)

    return slow
