"""Library code does not print: it logs to the "sw2" logger, which the CLI (or verbose=True) shows."""

from __future__ import annotations

import ast

import sw2
from tests.conftest import ROOT, write_spec
from tests.conftest import sw2 as run_sw2

SPEC = {"data": {"source": "package", "name": "iris"}, "model": {"name": "mlp"}, "train": {"epochs": 3}}


def test_no_print_below_the_cli():
    calls = []
    for path in (ROOT / "sw2").rglob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []


def test_python_api_is_quiet_by_default_and_speaks_when_asked(tmp_path, capsys):
    sw2.train(SPEC, tmp_path / "a")
    assert capsys.readouterr().out == ""
    sw2.train(SPEC, tmp_path / "b", verbose=True)
    out = capsys.readouterr().out
    assert "check PASS  speed:" in out and "sw2: bundle written to" in out
    assert out.count("check PASS  beats dumb baseline") == 1


def test_the_cli_shows_each_line_once(tmp_path):
    write_spec(tmp_path, SPEC)
    res = run_sw2("train", "spec.yaml", "--out", "b", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("check PASS  speed:") == 1 and res.stdout.count("sw2: bundle written to") == 1
    # --quiet: tests/test_cli.py::test_sigkill_then_resume_equals_uninterrupted checks that nothing is said
