"""Validating a spec imports no torch: the registries read what each built-in plug-in declares (a model's options
in sw2/model_options.py, a task's metrics and checks in sw2/task_rules.py, the other names in sw2/plugins.py),
and a plug-in's own module is imported only when it is used. The declarations must match what the modules
register: a built-in plug-in that is registered but not declared would be no choice of the spec's."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "numpy", "pandas", "sw2.models", "sw2.tasks", "sw2.data", "sw2.engine")


def run(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter at the repository root, without a plug-in of the user's."""
    env = {k: v for k, v in os.environ.items() if k != "SW2_PLUGINS"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_validating_a_spec_and_its_schema_import_no_torch():
    code = f"""
import glob, sys
import sw2.spec
from sw2.errors import UserError
for path in sorted(glob.glob("examples/*.yaml")):  # every model and task of the examples, their options checked
    sw2.spec.load_spec(path)
bads = ({{"model": {{"name": "convnett"}}}}, {{"task": "classify", "metrics": ["mae"]}}, {{"model": {{"name": "gpt"}}}})
for bad in bads:
    try:
        sw2.spec.parse_spec({{"data": {{"source": "package", "name": "iris"}}, **bad}})
        sys.exit("refused nothing: " + repr(bad))
    except UserError:
        pass
sw2.spec.json_schema()
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {HEAVY!r}))
sys.exit(f"imported {{loaded}}" if loaded else 0)
"""
    r = run(code)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_built_in_plugin_is_declared_as_its_module_registers_it():
    """Import every built-in plug-in module: each name it registers is declared with that module, and what the
    spec reads of it (a model's options, a task's metrics, blend and checks) is what the declaration says."""
    code = """
import importlib, pkgutil
from sw2.plugins import MODELS, OPTIMIZERS, SCHEDULES, SOURCES, TASKS
from sw2.task_rules import check_supervised

packages = {MODELS: "sw2.models", TASKS: "sw2.tasks", SOURCES: "sw2.data.sources",
            OPTIMIZERS: "sw2.engine.optimizers", SCHEDULES: "sw2.engine.schedules"}
for registry, package in packages.items():
    registry.names()  # imports the light modules that declare the built-ins
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
    registered = {name: item.__module__ for name, item in registry._items.items()}
    declared = {name: module for name, (module, _) in registry._declared.items()}
    assert registered == declared, (package, "registered", registered, "declared", declared)

from sw2.tasks.supervised import Supervised

for name, (_, options) in MODELS._declared.items():
    assert MODELS.get(name).options is options, name
for name, (_, declared) in TASKS._declared.items():
    task = TASKS.get(name)
    assert (task.name, task.metrics, task.blend) == (name, declared.metrics, declared.blend), name
    assert isinstance(task, Supervised) == (declared.checks is check_supervised), name
"""
    r = run(code)
    assert r.returncode == 0, r.stdout + r.stderr
