"""sw2 serve: real uvicorn servers on 127.0.0.1, started and stopped here. Auth, every bad request a 4xx,
the body limit, /metrics (parsed with prometheus-client) with drift after skewed inputs, masked request
logs, images / texts / rows / generation with server-sent events, the onnx backend, two workers and the web
page in headless Chromium. Micro-batching and graceful shutdown, with the network held: test_serve_held.py."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from PIL import Image  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import sw2  # noqa: E402
from tests.conftest import sw2_here, write_spec  # noqa: E402

KEY = "sw2-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SCRAPER = "scraper-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`sw2 serve BUNDLE ...` in its own process, ready (GET /readyz 200) when entered, stopped on exit."""

    def __init__(
        self, bundle: Path, *args: str, env: dict[str, str] | None = None, key: str | None = KEY, wait: str = "/readyz"
    ) -> None:
        self.port, self.wait = free_port(), wait
        self.url = f"http://127.0.0.1:{self.port}"
        extra = {"SW2_API_KEY": key} if key else {}
        command = [sys.executable, "-m", "sw2.cli", "serve", str(bundle), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **extra, **(env or {})},
        )  # fmt: skip
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.output = ""

    def __enter__(self) -> Server:
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{self.wait}", timeout=2).status_code == 200:
                    return self
            time.sleep(0.3)
        self.stop()
        raise AssertionError("the server did not become ready in 120 s")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.output = self.proc.stdout.read() if self.proc.stdout else ""  # type: ignore[union-attr]
        return self.proc.returncode

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, headers={**self.headers, **kwargs.pop("headers", {})}, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, headers={**self.headers, **kwargs.pop("headers", {})}, timeout=60, **kwargs)

    def metrics(self) -> dict[str, list]:
        """Samples by name, from /metrics as prometheus-client's own parser reads it."""
        out: dict[str, list] = {}
        for family in text_string_to_metric_families(self.get("/metrics").text):
            for s in family.samples:
                out.setdefault(s.name, []).append(s)
        return out


def penguin_rows() -> list[dict]:
    from palmerpenguins import load_penguins

    frame = load_penguins().drop(columns=["species"]).dropna()
    frame = frame.astype({c: float for c in frame.select_dtypes("number").columns})
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def table(penguins, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("log") / "requests.jsonl"
    with Server(penguins, "--log-requests", str(log), "--max-rows", "500") as server:
        server.log = log  # type: ignore[attr-defined]
        yield server


def test_auth_is_on_by_default_with_a_generated_private_key(penguins, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "SW2_API_KEY": "", "SW2_METRICS_KEY": SCRAPER}
    with Server(penguins, env=env, key=None) as server:
        key_file = tmp_path / "config" / "sw2" / "api-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip()
        assert len(key) >= 32
        row = {"rows": penguin_rows()[:1]}
        assert server.post("/v1/predict", json=row).status_code == 401
        wrong = server.post("/v1/predict", json=row, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
        assert server.post("/v1/predict", json=row, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert server.get("/metrics").status_code == 401
        scraper = {"Authorization": f"Bearer {SCRAPER}"}
        assert server.get("/metrics", headers=scraper).status_code == 200  # the metrics key reads metrics only
        assert server.post("/v1/predict", json=row, headers=scraper).status_code == 401
        assert server.get("/healthz").status_code == 200 and server.get("/readyz").status_code == 200
    assert "api-key (generated)" in server.output


def test_no_auth_warns_and_a_bad_bundle_is_exit_2(penguins, tmp_path):
    with Server(penguins, "--no-auth", key=None) as server:
        assert server.post("/v1/predict", json={"rows": penguin_rows()[:1]}).status_code == 200
    assert "--no-auth" in server.output and "anyone" in server.output
    done = sw2_here("serve", str(tmp_path / "missing"))
    assert done.returncode == 2 and "no such bundle" in done.stderr
    done = sw2_here("serve", str(penguins), "--backend", "onnx")
    assert done.returncode == 2 and "sw2 export" in done.stderr


def test_rows_predict_labels_and_top_k(table):
    answer = table.post("/v1/predict?top=2", json={"rows": penguin_rows()[:3]})
    assert answer.status_code == 200, answer.text
    preds = answer.json()["predictions"]
    assert len(preds) == 3 and all(p["label"] in ("Adelie", "Chinstrap", "Gentoo") for p in preds)
    assert len(preds[0]["top"]) == 2 and preds[0]["top"][0]["class"] == preds[0]["label"]
    model = table.get("/v1/model").json()
    assert model["task"] == "classify" and model["inputs"]["columns"]["island"] == "category"
    assert model["classes"] == ["Adelie", "Chinstrap", "Gentoo"] and "accuracy" in model["metrics"]


def test_every_bad_request_is_a_4xx_naming_the_problem(table):
    row = penguin_rows()[0]
    cases = [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON"),
        ({"content": b"rows=1", "headers": {"Content-Type": "text/plain"}}, 415, "content type"),
        ({"json": {"rows": []}}, 422, "non-empty list"),
        ({"json": [row]}, 422, "JSON object"),
        ({"json": {"rowz": [row]}}, 422, "exactly one of"),
        ({"json": {"rows": [{k: v for k, v in row.items() if k != "island"}]}}, 422, "'island' is missing"),
        ({"json": {"rows": [{**row, "colour": "blue"}]}}, 422, "unknown column 'colour'"),
        ({"json": {"rows": [{**row, "bill_length_mm": "long"}]}}, 422, "is not a number"),
        ({"json": {"rows": [{**row, "island": {"a": 1}}]}}, 422, "not a category value"),
        ({"json": {"rows": [row] * 501}}, 413, "at most 500"),
        ({"json": {"texts": ["hello"]}}, 422, "rows of columns"),
        ({"json": {"images": ["aGVsbG8="]}}, 422, "takes rows or texts"),
    ]
    for kwargs, status, words in cases:
        answer = table.post("/v1/predict", **kwargs)
        assert answer.status_code == status and words in answer.json()["error"], (kwargs, answer.text)
    assert table.post("/v1/predict?top=0", json={"rows": [row]}).status_code == 422
    assert table.get("/v1/nothing").status_code == 404 and "no such endpoint" in table.get("/v1/nothing").text
    assert table.get("/v1/predict").status_code == 405
    assert table.post("/v1/generate", json={"prompt": "a"}).status_code == 400
    assert table.get("/healthz").status_code == 200  # the server is still fine


def test_body_limit_answers_413_with_and_without_content_length(penguins):
    with Server(penguins, "--max-body-mb", "0.01") as server:
        big = json.dumps({"rows": penguin_rows() * 3}).encode()
        assert len(big) > 0.01 * 1024 * 1024
        answer = server.post("/v1/predict", content=big, headers={"Content-Type": "application/json"})
        assert answer.status_code == 413 and "over" in answer.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
            for i in range(0, len(big), 4096):
                yield big[i : i + 4096]

        answer = server.post("/v1/predict", content=chunks(), headers={"Content-Type": "application/json"})
        assert answer.status_code == 413
        small = {"rows": penguin_rows()[:2]}
        assert server.post("/v1/predict", json=small).status_code == 200


def wait_until(condition: Callable[[], bool], what: str, limit: float = 120) -> None:
    """Poll `condition` until it holds; `limit` seconds only guard against a hang (no outcome depends on it)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {limit:.0f} s"
        time.sleep(0.02)


def test_drift_gauges_rise_after_skewed_inputs_and_logs_are_masked(penguins, tmp_path):
    log = tmp_path / "requests.jsonl"
    with Server(penguins, "--log-requests", str(log)) as server:
        rows = penguin_rows()  # ordered by species: a sample in random order looks like the training split
        rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
        for i in range(0, 200, 20):
            assert server.post("/v1/predict", json={"rows": rows[i : i + 20]}).status_code == 200
        drift = {s.labels["input"]: s.value for s in server.metrics()["sw2_drift_psi"]}
        assert drift["bill_length_mm"] < 0.2 and drift["body_mass_g"] < 0.2, drift
        threshold = next(s.value for s in server.metrics()["sw2_drift_threshold"])
        assert threshold == 0.2
        skewed = [{**r, "bill_length_mm": r["bill_length_mm"] + 30} for r in rows[:200]]
        for i in range(0, 200, 20):
            assert server.post("/v1/predict", json={"rows": skewed[i : i + 20]}).status_code == 200
        drift = {s.labels["input"]: s.value for s in server.metrics()["sw2_drift_psi"]}
        assert drift["bill_length_mm"] > threshold and drift["body_mass_g"] < 0.2, drift
        per_class = {s.labels["class"]: s.value for s in server.metrics()["sw2_predictions_total"]}
        assert sum(per_class.values()) == 400
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 20 and lines[0]["endpoint"] == "/v1/predict"
    assert lines[0]["request"]["rows"][0]["island"].startswith("sha256:")
    assert not any(island in text for island in ("Biscoe", "Dream", "Torgersen"))  # the raw values never written
    assert lines[0]["request"]["rows"][0]["bill_length_mm"] == rows[0]["bill_length_mm"]


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def digit_images(n: int = 4) -> list[bytes]:
    from sklearn.datasets import load_digits

    return [png(np.clip(load_digits().images[i] * 16, 0, 255).astype(np.uint8)) for i in range(n)]


def test_images_base64_and_uploads_on_both_backends(digits_exported):
    images = digit_images()
    b64 = {"images": [base64.b64encode(i).decode() for i in images]}
    answers = {}
    for backend in ("torch", "onnx"):
        with Server(digits_exported, "--backend", backend) as server:
            one = server.post("/v1/predict", json=b64)
            two = server.post(
                "/v1/predict", files=[("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(images)]
            )
            assert one.status_code == two.status_code == 200, (one.text, two.text)
            assert one.json() == two.json()
            answers[backend] = one.json()["predictions"]
            assert [p["label"] for p in answers[backend]] == [0, 1, 2, 3]
            assert server.get("/v1/model").json()["backend"] == backend
            for payload, status, words in [
                ({"images": ["%%%"]}, 422, "not valid base64"),
                ({"images": [base64.b64encode(b"not an image").decode()]}, 422, "not an image file"),
                ({"images": [base64.b64encode(png(np.zeros((5000, 5000), np.uint8))).decode()]}, 413, "pixels"),
                ({"rows": [{"x": 1}]}, 422, "takes images"),
            ]:
                answer = server.post("/v1/predict", json=payload)
                assert answer.status_code == status and words in answer.json()["error"], answer.text
            empty = server.post("/v1/predict", files=[("other", ("a.txt", b"x", "text/plain"))])
            assert empty.status_code == 422
    for a, b in zip(answers["torch"], answers["onnx"]):
        assert a["label"] == b["label"] and abs(a["top"][0]["probability"] - b["top"][0]["probability"]) < 1e-4


def test_texts_predict_and_empty_text_is_refused(tmp_path):
    spec = {
        "name": "rt",
        "data": {"source": "package", "name": "rotten_tomatoes", "split": {"val": 0.1, "test": 0.2}, "limit": 1000},
        "text": {"tokenizer": "word", "vocab_size": 2000, "max_tokens": 32},
        "model": {"name": "bag"},
        "train": {"epochs": 2, "optimizer": "sgd", "lr": 4},
    }
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "rt", verbose=False, check=False)
    with Server(bundle.path, "--max-wait-ms", "20") as server:
        texts = ["a moving, beautifully acted film", "dull and lifeless, a waste of time", "fine"]
        answer = server.post("/v1/predict", json={"texts": texts})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
        with ThreadPoolExecutor(8) as pool:  # texts of different lengths batched together: same answers
            alone = list(pool.map(lambda t: server.post("/v1/predict", json={"texts": [t]}).json(), texts))
        assert [a["predictions"][0] for a in alone] == answer.json()["predictions"]
        assert server.get("/v1/model").json()["inputs"]["kind"] == "text"
        for payload in ({"texts": [""]}, {"texts": ["   "]}, {"texts": [3]}):
            bad = server.post("/v1/predict", json=payload)
            assert bad.status_code == 422 and "non-empty text" in bad.json()["error"]


def test_generate_streams_server_sent_events(language_model):
    bundle = sw2.load(language_model)
    expected = bundle.generate("ROMEO:", tokens=30, seed=3)
    with Server(language_model) as server:
        whole = server.post("/v1/generate", json={"prompt": "ROMEO:", "tokens": 30, "seed": 3})
        assert whole.status_code == 200 and whole.json()["text"] == expected
        pieces, events = [], []
        body = {"prompt": "ROMEO:", "tokens": 30, "seed": 3, "stream": True}
        with httpx.stream("POST", server.url + "/v1/generate", json=body, headers=server.headers, timeout=60) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("event:"):
                    events.append(line)
                elif line.startswith("data:") and events == []:
                    pieces.append(json.loads(line[5:])["text"])
        assert "".join(pieces) == expected and len(pieces) == 30 and events == ["event: done"]
        for payload, words in [
            ({"prompt": ""}, "prompt"),
            ({"prompt": "a", "tokens": 0}, "tokens"),
            ({"prompt": "a", "temperature": -1}, "temperature"),
            ({"prompt": "a", "x": 1}, "unknown"),
        ]:
            bad = server.post("/v1/generate", json=payload)
            assert bad.status_code == 422 and words in bad.json()["error"], bad.text
        assert server.post("/v1/predict", json={"rows": [{}]}).status_code == 400


def test_two_workers_answer_and_add_up_their_metrics(penguins):
    with Server(penguins, "--workers", "2") as server:
        rows = penguin_rows()
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(lambda i: server.post("/v1/predict", json={"rows": [rows[i]]}).status_code, range(40))
            )
        assert codes == [200] * 40
        # both worker processes answer: which one takes a connection is the kernel's choice (and a worker still
        # starting takes none), so ask until both have, rather than count answers from a fixed number of asks
        pids: set[int] = set()
        wait_until(lambda: pids.add(server.get("/v1/model").json()["worker"]) or len(pids) >= 2, "a second worker")
        assert len(pids) == 2 and server.proc.pid not in pids, pids
        done = sum(s.value for s in server.metrics()["sw2_requests_total"]
                   if s.labels["endpoint"] == "/v1/predict" and s.labels["status"] == "200")  # fmt: skip
        assert done == 40


def test_the_web_page_in_chromium(digits_exported, tmp_path):
    from tests.test_report import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is absent: apt-get install -y chromium (the README's test command does)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    image = tmp_path / "digit.png"
    image.write_bytes(digit_images(1)[0])
    with Server(digits_exported) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        assert "digits" in page.title()
        page.fill("#key", "wrong")
        page.click("#go")
        page.wait_for_selector(".err")
        assert "API key" in page.inner_text("#out")
        page.reload()
        page.fill("#key", KEY)
        page.click("#go")  # learns the model's inputs first
        page.wait_for_selector("#image-input:not([hidden])")
        page.set_input_files("#file", str(image))
        page.click("#go")
        page.wait_for_selector(".bar")
        names = page.locator(".name").all_inner_texts()
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert names[0] == "0" and len(names) == 5 and not errors
