"""Write deploy/requirements-serve.txt, the image's lock: every package `sw2 serve` needs, pinned with its hash.

    python deploy/lock.py [PIP OPTIONS]        (e.g. -c constraints.txt, --find-links DIR)

pip resolves deploy/requirements-serve.in for this interpreter and platform, wheels only, without installing
(`pip install --dry-run --ignore-installed --report`), and the report's chosen wheels are written with their
versions and sha256. Run it where the image runs, CPython 3.11 on linux x86_64, e.g. in the base image:

    docker run --rm --platform linux/amd64 -v "$PWD":/src -w /src python:3.11-slim-bookworm@sha256:... \
        python deploy/lock.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
INDEXES = ("--index-url", "https://pypi.org/simple", "--extra-index-url", "https://download.pytorch.org/whl/cpu")
HEADER = """\
# The packages of the sw2 image (Dockerfile), every one pinned with the sha256 of its wheel for CPython 3.11 on
# linux x86_64 (python:3.11-slim-bookworm): `sw2 serve` and nothing else (no matplotlib, tensorboard, captum).
# Made by `python deploy/lock.py` from deploy/requirements-serve.in; installed with
#   pip install --require-hashes --only-binary=:all: -r deploy/requirements-serve.txt
# torch is PyTorch's CPU build (+cpu), which only PyTorch's own index holds.
--extra-index-url https://download.pytorch.org/whl/cpu
"""


def pins(report: dict) -> list[str]:
    """`name==version --hash=sha256:...` for each wheel pip chose, by name."""
    lines = []
    for item in report["install"]:
        meta, info = item["metadata"], item["download_info"]
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if not digest:
            raise SystemExit(f"{meta['name']}: pip reported no sha256 for {info['url']}")
        name = meta["name"].lower().replace("_", "-").replace(".", "-")
        lines.append(f"{name}=={meta['version']} \\\n    --hash=sha256:{digest}\n")
    return sorted(lines)


def main(pip_options: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--only-binary=:all:", "--report", str(report), *INDEXES, *pip_options,
             "-r", str(HERE / "requirements-serve.in")],
            check=True,
        )  # fmt: skip
        lines = pins(json.loads(report.read_text()))
    (HERE / "requirements-serve.txt").write_text(HEADER + "".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
