"""sw2 serve under attack (issue 30), each class against a real server on 127.0.0.1: image bombs and a pixel
budget while /healthz keeps answering; a slow model filling the queue (503 + Retry-After), passing the
deadline (504), slow and half-sent bodies (408), a client hanging up (499), too many requests or bodies at
once (503); /readyz held at 503 through warm-up; malformed values of every kind a 4xx with a short message;
generation's options and prompt; every client its own answer under batching, --max-batch never exceeded; the
request log's rules; bad flags and weak keys; and a seeded fuzz run of a few thousand requests: no 5xx, no hang."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from PIL import Image  # noqa: E402

import sw2  # noqa: E402
from sw2.serve import payloads  # noqa: E402
from sw2.serve.request_log import RequestLog  # noqa: E402
from tests.conftest import ROOT, sw2_here  # noqa: E402
from tests.test_serve import KEY, Server, penguin_rows, png  # noqa: E402

PLUGINS = Path(__file__).parent / "plugins"
FUZZ_SEED, FUZZ_REQUESTS = 30, 2000


class Probe:
    """GET /healthz every 0.1 s in a thread (the slowest answer and any failure) and the server's resident
    memory (the largest seen), until stopped."""

    def __init__(self, server: Server) -> None:
        self.server, self.slowest, self.failures, self.count, self.rss_mb = server, 0.0, 0, 0, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.done.is_set():
            t0 = time.perf_counter()
            try:
                ok = httpx.get(self.server.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.slowest = max(self.slowest, time.perf_counter() - t0)
            self.failures += not ok
            self.count += 1
            self.rss_mb = max(self.rss_mb, rss_mb(self.server.proc.pid))
            time.sleep(0.1)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_image_bombs_meet_the_pixel_budget_while_healthz_answers(digits, tmp_path, monkeypatch):
    log = tmp_path / "requests.jsonl"
    canvas = png(np.zeros((2000, 2000), np.uint8))  # 4 M pixels in a few kB: the attack's large canvas
    decoded, to_array = [], payloads.to_array  # the request's budget refuses it before the rest are decoded
    monkeypatch.setattr(payloads, "to_array", lambda im, *a: decoded.append(im.size) or to_array(im, *a))
    with pytest.raises(payloads.BadRequest, match="pixels in one request"):
        payloads.images(digits.encoder, [canvas] * 1000)
    assert decoded == [(2000, 2000)] * 4, len(decoded)  # the 4 within the budget of 16.7 M pixels, of 1,000
    with Server(digits.path, "--log-requests", str(log)) as server, Probe(server) as probe:
        bomb = server.post("/v1/predict", json={"images": [b64(canvas)] * 1000})  # 1,000 of them: ~5 MB of JSON
        assert bomb.status_code == 413 and "pixels in one request" in bomb.json()["error"], bomb.text
        big = png(np.zeros((2100, 2100), np.uint8))  # over one image's cap for an 8 x 8 model
        one = server.post("/v1/predict", json={"images": [b64(big)]})
        assert one.status_code == 413 and "8 x 8" in one.json()["error"]
        photo = io.BytesIO()  # a 12 M pixel JPEG: decoded at 1/8 scale (draft), within the cap
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 4000), np.uint8)).save(photo, "JPEG")
        assert server.post("/v1/predict", json={"images": [b64(photo.getvalue())]}).status_code == 200

        def heavy(_: int) -> int:  # 4 canvases of 4 M pixels: just within the request's budget
            return server.post("/v1/predict", json={"images": [b64(canvas)] * 4}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(heavy, range(40)))
    assert codes == [200] * 40
    assert probe.count >= 5 and probe.failures == 0 and probe.slowest < 1.0, vars(probe)
    assert probe.rss_mb < 1500, probe.rss_mb  # the stated bound for this model under this load
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged[-1]["request"]["images"][0]["bytes"] == len(canvas) and "sha256" in logged[-1]["request"]["images"][0]


def slow_server(bundle: Path, *args: str, seconds: float, folder: Path) -> Server:
    """A server whose network call waits `seconds` (tests/plugins/slow_backend.py), first for `folder`/warmed
    to exist, and fails while `folder`/fail exists."""
    env = {"SW2_PLUGINS": "slow_backend", "PYTHONPATH": f"{PLUGINS}:{ROOT}", "SW2_SLOW_S": str(seconds),
           "SW2_SLOW_GATE": str(folder / "warmed"), "SW2_SLOW_FAIL": str(folder / "fail")}  # fmt: skip
    return Server(bundle, "--backend", "slow", *args, env=env, wait="/healthz")


def raw_post(server: Server, length: int, sent: bytes) -> socket.socket:
    """A POST whose headers promise `length` bytes of body, of which only `sent` go out (a slow client)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n")  # fmt: skip
    s.sendall(head.encode() + sent)
    return s


def status_of(s: socket.socket) -> int:
    return int(s.recv(4096).split(b" ", 2)[1])


def test_a_slow_model_full_queue_deadline_slow_bodies_and_hang_ups(penguins, tmp_path):
    args = ("--max-batch", "1", "--max-rows", "4", "--max-queue", "4", "--timeout-s", "3", "--max-concurrency", "6",
            "--max-body-mb", "1", "--max-inflight-mb", "2")  # fmt: skip
    rows = penguin_rows()
    with slow_server(penguins, *args, seconds=1.0, folder=tmp_path) as server:
        for _ in range(3):  # warm-up holds at the gate: alive, not ready
            assert server.get("/healthz").status_code == 200 and server.get("/readyz").status_code == 503
            time.sleep(0.2)
        (tmp_path / "warmed").touch()
        deadline = time.time() + 30
        while server.get("/readyz").status_code != 200:
            assert time.time() < deadline, "not ready 30 s after the warm-up could run"
            time.sleep(0.1)

        with ThreadPoolExecutor(8) as pool:  # one network call a second, 4 examples may wait: the rest 503 at once
            answers = list(pool.map(lambda i: server.post("/v1/predict", json={"rows": [rows[i]]}), range(8)))
        codes = [a.status_code for a in answers]
        assert set(codes) <= {200, 503, 504} and codes.count(503) >= 2 and 200 in codes and 504 in codes, codes
        assert all(a.headers.get("retry-after") == "1" for a in answers if a.status_code == 503)
        late = server.post("/v1/predict", json={"rows": rows[:4]})  # 4 calls of 1 s: past the 3 s deadline
        assert late.status_code == 504 and "--timeout-s" in late.json()["error"]

        held = [raw_post(server, 1_000_000, b"x" * 900_000) for _ in range(2)]  # 1.8 MB of bodies held
        time.sleep(0.5)
        busy = server.post("/v1/predict", content=json.dumps({"rows": rows * 12}).encode()[:500_000],
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert busy.status_code == 503 and "--max-inflight-mb" in busy.json()["error"], busy.text
        held += [raw_post(server, 1000, b'{"rows": [') for _ in range(4)]  # 6 requests in progress: the limit
        time.sleep(0.5)
        full = server.post("/v1/predict", json={"rows": rows[:1]})
        assert full.status_code == 503 and full.headers["retry-after"] == "1" and "in progress" in full.text
        assert server.get("/healthz").status_code == 200 and server.get("/metrics").status_code == 200
        held.pop().close()  # a client that hangs up mid-body
        assert [status_of(s) for s in held] == [408] * 5  # the bodies never came: 408 at the deadline
        for s in held:
            s.close()
        statuses = {s.labels["status"]: s.value for s in server.metrics()["sw2_requests_total"]
                    if s.labels["endpoint"] == "/v1/predict"}  # fmt: skip
        assert statuses.get("499") == 1 and statuses.get("408") == 5 and "500" not in statuses, statuses
        (tmp_path / "fail").touch()  # a bug: a 500 without details, its traceback in the server's log
        bug = server.post("/v1/predict", json={"rows": rows[:1]})
        assert bug.status_code == 500 and "failed on purpose" not in bug.text and "log" in bug.json()["error"]
    assert "Traceback" in server.output and "RuntimeError: the slow backend failed on purpose" in server.output


@pytest.fixture(scope="module")
def guarded(penguins) -> Iterator[Server]:
    with Server(penguins, "--max-batch", "4", "--max-wait-ms", "20") as server:
        yield server


def test_malformed_values_are_4xx_with_short_messages_and_never_a_null_probability(guarded):
    row = penguin_rows()[0]
    huge = "x" * 5_000_000
    cases = [
        ({"content": b"[" * 100_000 + b"]" * 100_000}, 400, "nested too deeply"),
        ({"content": b'{"rows": [{"bill_length_mm": NaN}]}'}, 400, "NaN is not JSON"),
        ({"content": json.dumps({"rows": [{**row, "bill_length_mm": 10**400}]}).encode()}, 422, "float32"),
        ({"json": {"rows": [{**row, "bill_length_mm": 1e308}]}}, 422, "rows[0].bill_length_mm"),
        ({"json": {"rows": [{**row, "body_mass_g": -1e40}]}}, 422, "outside float32"),
        ({"json": {"rows": [{**row, huge: 1}]}}, 422, "unknown column"),
        ({"json": {"rows": [{**row, "bill_length_mm": huge}]}}, 422, "is not a number"),
        ({"json": {huge: 1}}, 422, "exactly one of"),
    ]
    for kwargs, status, words in cases:
        answer = guarded.post("/v1/predict", headers={"Content-Type": "application/json"}, **kwargs)
        assert answer.status_code == status and words in answer.json()["error"], (status, answer.text[:300])
        assert len(answer.text) < 700  # a value is echoed cut short, never 5 MB back
    assert guarded.post("/v1/predict?top=1000000000000000000000", json={"rows": [row]}).status_code == 422
    for value in (3.0e38, -3.0e38, 1e30):  # within float32, far outside training: finite probabilities or a 422
        answer = guarded.post("/v1/predict", json={"rows": [{**row, "body_mass_g": value}]})
        assert answer.status_code in (200, 422), answer.text
        if answer.status_code == 200:
            probs = [t["probability"] for t in answer.json()["predictions"][0]["top"]]
            assert all(isinstance(p, float) and np.isfinite(p) for p in probs), answer.text
    assert guarded.get("/healthz").status_code == 200


def test_generation_cuts_the_prompt_and_refuses_bad_options(language_model):
    bundle = sw2.load(language_model)
    encode, encoded = bundle.encoder.encode, []  # a 4 MB prompt: only its context is read (encoded), never all
    bundle.encoder.encode = lambda text, *args: encoded.append(len(text)) or encode(text, *args)  # type: ignore
    assert bundle.generate("ROMEO:\n" * 600_000, tokens=5, seed=1) == bundle.generate("ROMEO:\n" * 100, 5, seed=1)
    assert encoded and max(encoded) <= 16 * bundle.model.block, encoded  # 16 characters a token at the most
    with Server(language_model, "--max-prompt-chars", "5000") as server:
        for body, status, words in [
            ('{"prompt": "a", "temperature": 1e-300}', 422, "temperature"),
            ('{"prompt": "a", "temperature": 1e400}', 422, "temperature"),
            ('{"prompt": "a", "temperature": "hot"}', 422, "temperature"),
            ('{"prompt": "a", "top_k": 0}', 422, "top_k"),
            ('{"prompt": "a", "seed": 18446744073709551616}', 422, "seed"),
            ('{"prompt": "a", "seed": -1}', 422, "seed"),
            ('{"prompt": "a", "stream": "yes"}', 422, "stream"),
            ('{"prompt": "a", "tokens": 100000000000000000000}', 422, "tokens"),
            (json.dumps({"prompt": "ROMEO:" * 700_000}), 413, "--max-prompt-chars"),
        ]:
            answer = server.post("/v1/generate", content=body.encode(), headers={"Content-Type": "application/json"})
            assert answer.status_code == status and words in answer.json()["error"], (body[:80], answer.text[:300])
        ok = server.post("/v1/generate", json={"prompt": "ROMEO:\n" * 700, "tokens": 5, "temperature": 0})
        assert ok.status_code == 200 and len(ok.json()["text"]) == 5


def test_every_client_gets_its_own_answer_and_max_batch_is_never_exceeded(guarded, penguins):
    rows = penguin_rows()
    bundle = sw2.load(penguins)
    parts = [rows[i * 7 : i * 7 + 1 + i % 7] for i in range(40)]  # 1 to 7 rows each, all different
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda p: guarded.post("/v1/predict?top=3", json={"rows": p}), parts))
    for part, answer in zip(parts, answers):
        assert answer.status_code == 200, answer.text
        expected = bundle.top(part, 3)
        got = answer.json()["predictions"]
        assert [g["label"] for g in got] == [e[0][0] for e in expected]
        for g, e in zip(got, expected):
            assert np.allclose([t["probability"] for t in g["top"]], [p for _, p in e], atol=1e-4)
    m = guarded.metrics()
    count = next(s.value for s in m["sw2_batch_size_count"])
    within = next(s.value for s in m["sw2_batch_size_bucket"] if s.labels["le"] == "4.0")
    assert count > 0 and within == count  # every network call took at most --max-batch (4) examples
    assert next(s.value for s in m["sw2_batch_size_sum"]) >= sum(len(p) for p in parts)


def fuzz_request(rng: random.Random, row: dict) -> dict:
    """One hostile request: random JSON shapes, types, sizes, encodings, headers and paths."""

    def value(depth: int = 0) -> object:
        makers = [
            lambda: None, lambda: rng.random() * 10 ** rng.randint(-5, 60), lambda: rng.randint(-(2**70), 2**70),
            lambda: rng.choice([True, False]), lambda: rng.choice(list(row.values())),
            lambda: "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(0, 40))),
            lambda: "a" * rng.randrange(10_000), lambda: [value(depth + 1) for _ in range(rng.randrange(4))],
            lambda: {str(rng.random()): value(depth + 1)},
            lambda: {k: value(depth + 1) for k in rng.sample(list(row), rng.randrange(len(row)))},
        ]  # fmt: skip
        return makers[rng.randrange(len(makers) if depth < 3 else 7)]()

    def body() -> bytes:
        shape = rng.randrange(9)
        if shape == 0:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        if shape == 1:
            return json.dumps({"rows": [row]})[: rng.randrange(40)].encode()  # cut short
        if shape == 2:
            return json.dumps({"rows": [{**row, rng.choice(list(row)): value()} for _ in range(rng.randrange(1, 5))]},
                              default=str).encode()  # fmt: skip
        if shape == 3:
            return json.dumps({rng.choice(["rows", "texts", "images", "prompt", "x"]): value()}, default=str).encode()
        if shape == 4:
            return json.dumps({"images": [b64(bytes(rng.randrange(256) for _ in range(64))), "%%"]}).encode()
        if shape == 5:
            return json.dumps({"prompt": value(), "tokens": value(), "temperature": value(), "seed": value()},
                              default=str).encode()  # fmt: skip
        if shape == 6:
            return json.dumps(value(), default=str).encode(rng.choice(["utf-8", "utf-16", "latin-1"]), "replace")
        if shape == 7:
            return b"--b\r\nContent-Disposition: form-data; name=files; filename=a\r\n\r\n" + bytes(rng.randrange(9))
        return json.dumps({"rows": [row] * rng.randrange(1, 50)}).encode()

    kind = rng.choice(["application/json", "application/json; charset=utf-16", "multipart/form-data; boundary=b",
                       "text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data"])  # fmt: skip
    headers = {"Content-Type": kind} if kind else {}
    if rng.random() < 0.1:
        headers["Authorization"] = rng.choice(["Bearer", "Basic x", "Bearer " + "k" * 5000, f"bearer {KEY}"])
    path = rng.choice(["/v1/predict", "/v1/predict", "/v1/predict?top=" + str(rng.randint(-5, 2000)),
                       "/v1/generate", "/v1/model", "/metrics", "/" + "x" * rng.randrange(3000)])  # fmt: skip
    return {"method": rng.choice(["POST"] * 8 + ["GET", "PUT"]), "path": path, "headers": headers, "body": body()}


def test_fuzz_a_few_thousand_hostile_requests_no_5xx_no_hang(guarded):
    rng, row = random.Random(FUZZ_SEED), penguin_rows()[0]
    requests = [fuzz_request(rng, row) for _ in range(FUZZ_REQUESTS)]
    with httpx.Client(timeout=20) as client:

        def send(r: dict) -> tuple[int, str]:
            headers = {"Authorization": f"Bearer {KEY}", **r["headers"]}
            a = client.request(r["method"], guarded.url + r["path"], headers=headers, content=r["body"])
            if a.status_code < 500:
                assert a.headers["content-type"].startswith(("application/json", "text/plain", "text/html"))
            return a.status_code, a.text[:200]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(send, requests))
    server_errors = [(r["path"][:40], r["body"][:80], t) for r, (code, t) in zip(requests, results) if code >= 500]
    assert not server_errors, server_errors[:5]
    codes = {code for code, _ in results}
    assert 200 in codes and len(codes) >= 5, codes
    assert guarded.get("/healthz").status_code == 200 and guarded.proc.poll() is None


def test_bad_serve_flags_weak_keys_and_a_readable_key_file_are_exit_2(penguins, tmp_path, monkeypatch):
    monkeypatch.delenv("SW2_API_KEY", raising=False)
    for args, words in [(("--workers", "0"), "--workers 0"), (("--port", "70000"), "--port 70000"),
                        (("--max-wait-ms", "-1"), "--max-wait-ms"), (("--max-body-mb", "nan"), "--max-body-mb nan"),
                        (("--max-body-mb", "inf"), "--max-body-mb inf"), (("--max-batch", "-3"), "--max-batch -3"),
                        (("--timeout-s", "0"), "--timeout-s"), (("--max-wait-ms", "nan"), "--max-wait-ms"),
                        (("--max-queue", "10"), "--max-queue 10")]:  # fmt: skip
        done = sw2_here("serve", str(penguins), *args)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    loose = tmp_path / "key"
    loose.write_text("k" * 40)
    loose.chmod(0o644)
    done = sw2_here("serve", str(penguins), "--key-file", str(loose))
    assert done.returncode == 2 and "chmod 600" in done.stderr
    for name, key, words in [("short", "abc", "too short"), ("repeated", "0123456789abcdef" * 3, "repeats"),
                             ("flat", "ab" * 20, "repeats")]:  # fmt: skip
        (tmp_path / name).write_text(key)
        (tmp_path / name).chmod(0o600)
        done = sw2_here("serve", str(penguins), "--key-file", str(tmp_path / name))
        assert done.returncode == 2 and words in done.stderr and "at least 32 random characters" in done.stderr
    for env, words in [({"SW2_API_KEY": "REPLACE-WITH-A-RANDOM-KEY-OF-32-OR-MORE-CHARACTERS"}, "placeholder"),
                       ({"SW2_API_KEY": "x" * 31}, "too short"),
                       ({"SW2_API_KEY": KEY, "SW2_METRICS_KEY": "metrics"}, "$SW2_METRICS_KEY")]:  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "sw2.cli", "serve", str(penguins)], capture_output=True,
                              text=True, env={**os.environ, **env}, timeout=120)  # fmt: skip
        assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_request_log_masks_by_default_caps_values_and_rotates(tmp_path):
    spec = SimpleNamespace(serve=SimpleNamespace(log_columns=["city", "prompt"], mask=["city"], mask_mode="hash"))
    bundle = SimpleNamespace(spec=spec, encoder=SimpleNamespace(text_columns=["review"]))
    path = tmp_path / "requests.jsonl"
    log = RequestLog(bundle, path, max_bytes=4000)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    log.log("/v1/predict", {"rows": [{"city": "Oslo", "age": 41}]}, {"predictions": [{"value": float("nan")}]})
    log.log("/v1/predict", {"texts": ["a secret review"]}, {})
    log.log("/v1/generate", {"prompt": "p" * 5000}, {"tokens": 3})
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # valid JSON: NaN written as null
    assert lines[0]["request"]["rows"][0]["city"].startswith("sha256:")  # in mask: masked though listed
    assert lines[0]["request"]["rows"][0]["age"].startswith("sha256:")  # not listed: masked by default
    assert lines[0]["answer"]["predictions"][0]["value"] is None
    assert lines[1]["request"]["texts"][0].startswith("sha256:") and "secret" not in path.read_text()
    assert len(lines[2]["request"]["prompt"]) == 200  # listed: logged, cut to 200 characters
    spec.serve.mask_mode = "drop"
    dropped = RequestLog(bundle, path, max_bytes=4000)
    dropped.log("/v1/predict", {"rows": [{"city": "Oslo", "age": 41}]}, {})
    assert json.loads(path.read_text().splitlines()[-1])["request"]["rows"][0] == {}
    for _ in range(200):
        dropped.log("/v1/predict", {"rows": [{"age": 1}] * 20}, {})
    rotated = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("requests.jsonl."))
    assert rotated == ["requests.jsonl.1", "requests.jsonl.2", "requests.jsonl.3", "requests.jsonl.lock"]
    assert all(p.stat().st_size <= 4000 for p in tmp_path.glob("requests.jsonl*"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.glob("requests.jsonl*"))
    os.chmod(path, 0o644)  # an older, looser file is tightened at start
    RequestLog(bundle, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_long_date_value_is_a_422_before_any_parsing():
    """S2: a date value only had to be a non-empty string, and one of a megabyte held a worker for minutes in
    the date parser."""
    import pandas as pd

    from sw2.data.columns import ColumnKind
    from sw2.data.encode import Encoder
    from sw2.data.examples import Examples

    frame = pd.DataFrame({"d": pd.date_range("2020-01-01", periods=30).strftime("%Y-%m-%d"), "x": np.arange(30.0)})
    kinds = [ColumnKind("d", "date", "inputs: date"), ColumnKind("x", "number", "inputs: number")]
    encoder = Encoder.fit(Examples(np.zeros(30), frame), None, kinds)
    assert payloads.describe(encoder)["columns"] == {"d": "date", "x": "number"}
    start = time.perf_counter()
    with pytest.raises(payloads.BadRequest, match=r"rows\[1\]\.d: 1000000 characters; a date has at most 64"):
        payloads.rows(encoder, [{"d": "2020-01-02", "x": 1.0}, {"d": "2020-01-0" + "1" * 999_991, "x": 1.0}])
    assert time.perf_counter() - start < 1
    ok = payloads.rows(encoder, [{"d": "2020-01-02T10:00:00+01:00", "x": 1.0}])
    assert encoder.inputs(ok)["num"].shape == (1, 9)
