"""The run report: every bundle's report.html is one self-contained page that opens in headless Chromium
without console errors and with every image loaded."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from sklearn.datasets import load_wine

import sw2
from tests.conftest import sw2_here, write_spec

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECTIONS = ("summary", "metrics", "curves", "confusion", "mistakes", "label-errors", "calibration", "saliency",
            "tests", "preflight", "data", "spec")  # fmt: skip


def open_in_chromium(page: Path, screenshot: Path) -> tuple[list[str], list[list]]:
    """Load `page` in headless Chromium: (console errors and failed requests, [alt, loaded] per image)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is absent: apt-get install -y chromium (the README's test command does)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    errors: list[str] = []
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        tab.goto(page.as_uri(), wait_until="load")
        images = tab.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        tab.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return errors, images


def test_report_of_the_demo_opens_in_chromium(digits, tmp_path):
    page = digits.path / "report.html"
    text = page.read_text()
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in text, anchor
    assert "<script" not in text and not re.search(r"""(src|href)=["']?(https?:|//)""", text)  # self-contained
    for alt in ("training curves", "confusion matrix", "reliability diagram", "saliency maps",
                "what the net sees", "most confident wrong predictions"):  # fmt: skip
        assert f'alt="{alt}' in text, alt
    assert "most-confused pairs" in text and "PASS" in text

    shot = Path(os.environ.get("SW2_SCREENSHOT_DIR", tmp_path)) / "report.png"
    errors, images = open_in_chromium(page, shot)
    assert errors == []
    assert len(images) >= 6 and all(loaded for _, loaded in images), images
    assert shot.stat().st_size > 50_000


def test_report_command_rewrites_and_reports_on_other_data(tmp_path):
    wine = load_wine(as_frame=True).frame.rename(columns={"target": "label"}).sample(frac=1.0, random_state=0)
    wine["example"] = range(len(wine))  # a column named like the galleries' own must not break the report
    wine.iloc[:150].to_csv(tmp_path / "wine.csv", index=False)
    wine.iloc[150:].to_csv(tmp_path / "new.csv", index=False)
    spec = {"name": "wine", "data": {"path": "wine.csv"}, "train": {"epochs": 30, "batch_size": 16, "lr": 0.003}}
    bundle = sw2.train(write_spec(tmp_path, spec), tmp_path / "b", verbose=False)
    text = (bundle.path / "report.html").read_text()
    assert "mean |integrated gradients| per numeric column" in text  # table saliency
    (bundle.path / "report.html").unlink()
    result = sw2_here("report", str(bundle.path), cwd=tmp_path)  # the bundle alone reads wine.csv: its signed record
    assert result.returncode == 0 and (bundle.path / "report.html").read_text().count("<h2") == text.count("<h2")
    (bundle.path / "report.html").unlink()
    result = sw2_here("report", str(bundle.path), "--spec", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (bundle.path / "report.html").read_text().count("<h2") == text.count("<h2")

    result = sw2_here("report", str(bundle.path), "--data", "new.csv", "--out", "new.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    other = (tmp_path / "new.html").read_text()
    assert "other data (new.csv): 28 examples" in other and "From the training run" in other

    result = sw2_here("report", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 2 and "no such bundle folder" in result.stderr
    result = sw2_here("report", str(bundle.path), "--spec", "spec.yaml", "--out", "missing/r.html", cwd=tmp_path)
    assert result.returncode == 2 and "the folder missing does not exist" in result.stderr  # checked before work
    assert not list(tmp_path.glob("**/.*.tmp*"))


def test_report_without_a_test_split_scores_val(tmp_path):
    spec = {
        "name": "wine0",
        "data": {"source": "package", "name": "wine", "split": {"val": 0.3, "test": 0.0}},
        "model": {"name": "mlp"},
        "train": {"epochs": 10, "batch_size": 16, "lr": 0.003},
    }
    bundle = sw2.train(spec, tmp_path / "b", verbose=False, check=False)
    text = (bundle.path / "report.html").read_text(encoding="utf-8")
    assert "validation split (no test split)" in text and 'alt="reliability diagram"' in text
