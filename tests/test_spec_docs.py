"""The docs cannot drift from the code: docs/spec.md is what the schema generates, every field has a
description, and every relative link in README.md and docs/*.md points to a file (and heading) that exists."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from sw2.spec import parse_spec
from sw2.spec_reference import REGENERATE, anchor, field_paths, render
from tests.conftest import ROOT

SPEC_MD = ROOT / "docs" / "spec.md"
FIX = f"regenerate it with `{REGENERATE}` (from the repository root) and commit docs/spec.md"


@functools.cache
def fresh() -> tuple[str, list[str]]:
    """The reference and its undescribed fields as a new process without plug-ins generates them (a test's
    plug-in registered in this process, or $SW2_PLUGINS, would add models that are not sw2's)."""
    env = {k: v for k, v in os.environ.items() if k != "SW2_PLUGINS"}
    code = "import json, sw2.spec_reference as r; print(json.dumps([r.render(), r.undocumented()]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    text, missing = json.loads(out.stdout)
    return text, missing


def test_spec_reference_matches_the_schema():
    text, _ = fresh()
    committed = SPEC_MD.read_text(encoding="utf-8") if SPEC_MD.is_file() else ""
    schema, documented = field_paths(text), field_paths(committed)
    assert not schema - documented, f"docs/spec.md lacks fields {sorted(schema - documented)}; {FIX}"
    assert not documented - schema, f"docs/spec.md names fields that do not exist {sorted(documented - schema)}; {FIX}"
    assert committed == text, f"docs/spec.md differs from the schema (a type, default or description); {FIX}"


def test_every_spec_field_has_a_description():
    _, missing = fresh()
    assert not missing, f"fields without a description (add description= to their Field(...)): {missing}"


def test_the_reference_names_the_fields_the_old_table_missed():
    paths = {p.rsplit(": ", 1)[-1] for p in field_paths(render())}
    for path in ["text.tokenizer", "doctor.folds", "serve.mask_mode", "preset", "tune", "data.exclude",
                 "train.distill.teacher", "train.snapshots", "train.layer_lr_decay", "train.unfreeze",
                 "augment.token_drop", "augment.token_swap", "model.whiten", "tests[].max_p95_ms"]:  # fmt: skip
        assert path in paths, path
    assert "tests[] (kind: latency): tests[].max_p95_ms" in field_paths(render())
    assert "model: mlp: model.numeric" in field_paths(render())


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def headings(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (GitHub's: a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            a = anchor(m.group(1).strip())
            out.add(a if a not in seen else f"{a}-{seen[a]}")
            seen[a] = seen.get(a, 0) + 1
    return out


def test_relative_links_in_the_docs_resolve():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file, _, frag = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif frag and dest.suffix == ".md" and frag not in headings(dest):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_test_command_is_what_ci_runs():
    command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert f"```\n{command}\n```" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_specs_are_valid_specs():
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 3  # a CSV, a folder of images, a text column
    for block in blocks:
        parse_spec(yaml.safe_load(block), "README.md")
