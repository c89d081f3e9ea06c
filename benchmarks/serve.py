"""sw2 serve under load, side by side with a naive FastAPI app, same bundle, same machine, one run.

The naive app is what one writes first: FastAPI, the bundle loaded with sw2, eager PyTorch on each request
(no batching; FastAPI runs the sync endpoint in its thread pool). sw2 serve runs with its defaults (auth on,
micro-batching up to 32 examples / 5 ms), on the onnx and the torch backend. Each server is one uvicorn
worker with one compute thread (OMP_NUM_THREADS=1): on a 2-core machine the load generator needs the other
core. The load generator is wrk (C, Debian's package `wrk`; a Python client would take more CPU than the
servers), one thread, POSTing one MNIST test image (base64 JSON) per request at 1, 8, 32 and 64 connections;
the mixed run sends every 10th request malformed (bad base64), which must get 4xx while the rest get 200.

    python -m benchmarks.serve [--bundle runs/mnist] [--seconds 15] [--quick]

Target (issue 18): at 32 connections >= 2x the naive app's throughput with an equal or lower p99, no errors
over >= 10,000 requests, and the same with 10% malformed requests.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, datasets_dir, machine, markdown_table

KEY = "bench-key-0123456789abcdef0123456789"
OUT = Path("runs") / "bench-serve"
LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  counts, sent, bad_sent = {}, 0, 0
  good = wrk.format("POST", "/v1/predict", HEADERS, GOOD)
  bad = wrk.format("POST", "/v1/predict", HEADERS, BAD)
end
function request()
  sent = sent + 1
  if MIXED and sent % 10 == 0 then bad_sent = bad_sent + 1 return bad end
  return good
end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local out = {requests = summary.requests, seconds = summary.duration / 1e6,
               errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
               p50_ms = latency:percentile(50) / 1000, p99_ms = latency:percentile(99) / 1000, statuses = {}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do out.statuses[tostring(k)] = (out.statuses[tostring(k)] or 0) + v end
  end
  io.write("RESULT ")
  local parts = {}
  for k, v in pairs(out) do
    if type(v) ~= "table" then table.insert(parts, string.format("%q:%s", k, tostring(v))) end
  end
  local st = {}
  for k, v in pairs(out.statuses) do table.insert(st, string.format("%q:%d", k, v)) end
  io.write("{" .. table.concat(parts, ",") .. ",\"statuses\":{" .. table.concat(st, ",") .. "}}\n")
end
"""


def naive_app():  # noqa: ANN201 (a FastAPI app; FastAPI is imported only here)
    """The baseline: eager PyTorch per request, no batching (run by uvicorn in its own process)."""
    import torch
    from fastapi import FastAPI, HTTPException
    from PIL import Image

    import sw2

    torch.set_num_threads(1)
    bundle = sw2.load(os.environ["SW2_BENCH_BUNDLE"])
    c, h, w = bundle.encoder.image_shape
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(payload: dict) -> dict:
        try:
            images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(s, validate=True))).convert("L"))
                      for s in payload["images"]]  # fmt: skip
        except Exception:
            raise HTTPException(422, "images: not base64 image files") from None
        probs = bundle.predict_proba(np.stack(images)[:, None])
        classes = bundle.classes or []
        return {"predictions": [{"label": classes[int(p.argmax())], "probability": float(p.max())} for p in probs]}

    return app


def mnist_png() -> bytes:
    from PIL import Image

    from sw2.data import idx

    images, _ = idx.load_pair(datasets_dir() / "mnist", "t10k")
    buf = io.BytesIO()
    Image.fromarray(images[0][0] if images.ndim == 4 else images[0]).save(buf, format="PNG")
    return buf.getvalue()


def start(kind: str, bundle: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SW2_API_KEY": KEY, "SW2_BENCH_BUNDLE": str(bundle)}
    if kind == "naive":
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.serve:naive_app", "--factory", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "sw2.cli", "serve", str(bundle), "--port", str(port), "--backend", kind]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/{'docs' if kind == 'naive' else 'readyz'}"
    for _ in range(240):
        try:
            if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
                return proc
        except FileNotFoundError:
            raise SystemExit("curl is needed") from None
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{kind} did not start")


def load(port: int, connections: int, seconds: float, body: str, mixed: bool, folder: Path) -> dict:
    script = folder / "load.lua"
    bad = json.dumps({"images": ["%%% not base64 %%%"]})
    headers = f'HEADERS = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {KEY}"}}\n'
    values = f"GOOD = {json.dumps(body)}\nBAD = {json.dumps(bad)}\nMIXED = {'true' if mixed else 'false'}\n"
    script.write_text(headers + values + LUA)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
         f"http://127.0.0.1:{port}"], capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"RESULT (\{.*\})", done.stdout)
    if not found:
        raise SystemExit(f"wrk: {done.stdout}\n{done.stderr}")
    r = json.loads(found.group(1))
    statuses = {int(k): v for k, v in r["statuses"].items()}
    ok = statuses.get(200, 0)
    four = sum(v for k, v in statuses.items() if 400 <= k < 500)
    other = sum(v for k, v in statuses.items() if k != 200 and not 400 <= k < 500)
    return {
        "connections": connections, "requests": r["requests"], "throughput": round(r["requests"] / r["seconds"], 1),
        "p50_ms": round(r["p50_ms"], 2), "p99_ms": round(r["p99_ms"], 2), "ok": ok, "4xx": four,
        "errors": other + r["errors"], "mixed": mixed,
        "other": {k: v for k, v in statuses.items() if k != 200 and not 400 <= k < 500}, "socket": r["errors"],
    }  # fmt: skip


def main() -> None:
    print(machine(), flush=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="an MNIST bundle (default: train examples/mnist.yaml into runs/bench-serve)")
    ap.add_argument("--seconds", type=int, default=15, help="seconds of load per cell")
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--servers", nargs="+", default=["naive", "onnx", "torch"], choices=["naive", "onnx", "torch"])
    ap.add_argument("--quick", action="store_true", help="2 s a cell: checks that the script runs, no figures")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    import sw2

    seconds = 2 if args.quick else args.seconds
    bundle = Path(args.bundle) if args.bundle else OUT / "mnist"
    if not args.bundle:
        spec = ROOT / "examples" / "mnist.yaml"
        sw2.train(spec, bundle, verbose=False, check=False)
    if not (bundle / "model.onnx").exists():
        sw2.export(bundle, spec_from=ROOT / "examples" / "mnist.yaml")
    body = json.dumps({"images": [base64.b64encode(mnist_png()).decode()]})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, kind in enumerate(args.servers):
            port = 18700 + i
            proc = start(kind, bundle, port)
            try:
                load(port, 8, 2, body, False, Path(tmp))  # warm-up
                cells = [(c, False) for c in args.connections] + [(32, True)]
                for connections, mixed in cells:
                    row = {"server": "naive FastAPI (eager, per request)" if kind == "naive" else f"sw2 serve ({kind})"}
                    row |= load(port, connections, seconds, body, mixed, Path(tmp))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                proc.terminate()
                proc.wait(30)
    cols = {"server": "server", "connections": "connections", "mixed": "10% malformed", "requests": "requests",
            "throughput": "requests/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms", "ok": "200", "4xx": "4xx",
            "errors": "errors"}  # fmt: skip
    print(markdown_table(rows, cols))
    naive = {r["connections"]: r for r in rows if r["server"].startswith("naive") and not r["mixed"]}
    for r in rows:
        if not r["server"].startswith("naive") and not r["mixed"] and r["connections"] in naive:
            base = naive[r["connections"]]
            print(f"{r['server']} at {r['connections']}: {r['throughput'] / base['throughput']:.2f}x the naive "
                  f"app's throughput, p99 {r['p99_ms']} vs {base['p99_ms']} ms")  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serve.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
