"""sw2 serve with its network held (tests/plugins/slow_backend.py, $SW2_SLOW_HOLD): what depends on requests
being in flight at the same time, made the same on any machine. Requests that come while the network
computes share its next call (micro-batching, read from /metrics), and SIGTERM lets a request in flight finish.
The test waits for each state it needs (the held call begun, N requests in the server, the listening socket
closed) instead of sleeping and hoping; no outcome depends on this machine's speed. What batching buys in
throughput is benchmarks/serve.py's to measure."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from tests.conftest import ROOT  # noqa: E402
from tests.test_serve import Server, penguin_rows, wait_until  # noqa: E402

PLUGINS = Path(__file__).parent / "plugins"


def held_server(bundle: Path, hold: Path, *flags: str) -> Server:
    """A server on the slow test backend whose network calls after the warm-up wait while `hold` exists
    (each first creates `hold`.held); `hold` is created here."""
    hold.touch()
    env = {"SW2_PLUGINS": "slow_backend", "PYTHONPATH": f"{PLUGINS}:{ROOT}", "SW2_SLOW_HOLD": str(hold)}
    return Server(bundle, "--backend", "slow", *flags, env=env)


def test_concurrent_requests_share_batches(penguins, tmp_path):
    """The network is held on the first request until the other N are all in the server (then a GET passes
    --max-concurrency N + 1 and is refused): one network call for the first request, one for the N others."""
    n, hold = 8, tmp_path / "hold"
    flags = ("--max-batch", str(n), "--max-wait-ms", "60000", "--max-concurrency", str(n + 1))
    rows = penguin_rows()

    def predict(row: dict) -> httpx.Response:  # sent again where a probing GET below held the last place
        while (answer := server.post("/v1/predict", json={"rows": [row]})).status_code == 503:
            assert "in progress" in answer.text, answer.text
        return answer

    with held_server(penguins, hold, *flags) as server, ThreadPoolExecutor(n + 1) as pool:
        first = pool.submit(predict, rows[0])
        wait_until(Path(f"{hold}.held").exists, "the first request's network call")
        rest = [pool.submit(predict, rows[i]) for i in range(1, n + 1)]
        wait_until(lambda: server.get("/v1/model").status_code == 503, f"{n + 1} requests in progress")
        hold.unlink()
        answers = [first.result(), *(f.result() for f in rest)]
        assert [a.status_code for a in answers] == [200] * (n + 1), [a.text for a in answers]
        m = server.metrics()
    count = next(s.value for s in m["sw2_batch_size_count"])
    total = next(s.value for s in m["sw2_batch_size_sum"])
    ones = next(s.value for s in m["sw2_batch_size_bucket"] if s.labels["le"] == "1.0")
    # the warm-up's call and the first request's take one example each; the n others, one call together
    assert (count, total, ones) == (3, 1 + 1 + n, 2), (count, total, ones)
    done = {s.labels["status"]: s.value for s in m["sw2_requests_total"] if s.labels["endpoint"] == "/v1/predict"}
    assert done["200"] == n + 1 and set(done) <= {"200", "503"}, done


def refused(server: Server) -> bool:
    """Whether the server no longer takes connections (it has begun to shut down)."""
    try:
        httpx.get(f"{server.url}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        pass
    return False


def test_shutdown_lets_in_flight_requests_finish(penguins, tmp_path):
    """SIGTERM while a request's network call is held, released once the server has stopped taking
    connections: the request is still answered, then the server exits cleanly."""
    hold = tmp_path / "hold"
    server = held_server(penguins, hold).__enter__()
    result: dict = {}

    def request() -> None:
        result["answer"] = server.post("/v1/predict", json={"rows": penguin_rows()[:3]})

    worker = threading.Thread(target=request)
    worker.start()
    wait_until(Path(f"{hold}.held").exists, "the request's network call")  # the request is in flight
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: refused(server), "the shutdown")
    hold.unlink()
    worker.join(60)
    assert server.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    assert result["answer"].status_code == 200 and len(result["answer"].json()["predictions"]) == 3
    server.stop()
    assert "Traceback" not in server.output
