"""The spec reference (docs/spec.md), generated from the schema itself so that it cannot drift from it.

It walks the pydantic `Spec` model: every field of every section, with its type (choices read from the
registries, limits from the field), default and description; a section whose `name` picks a plug-in's options
(`model:`) gets one table per registered model, a list or mapping of alternatives (`tests:`, `tune:`) one per
kind. `python -m sw2.spec_reference [FILE]` writes it (default docs/spec.md), `--check` only compares;
`sw2 spec --reference` prints it (with the plug-ins of $SW2_PLUGINS). tests/test_spec_docs.py checks the
committed file against a fresh generation. Like the spec, this imports no torch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, Tag
from pydantic.fields import FieldInfo

from sw2.choices import OneOf, Options
from sw2.files import write_file
from sw2.log import info
from sw2.spec import Spec

DEFAULT_PATH = Path("docs/spec.md")
REGENERATE = "python -m sw2.spec_reference"
HEADER = f"""# Spec reference

Generated from the schema (`sw2/spec.py`; each model's options in `sw2/model_options.py`) by
`{REGENERATE}`: do not edit by hand. Every key a spec may hold, with its type, default and
description. `sw2 spec FILE` prints a spec with every default filled (the same resolved spec is saved in each
bundle); `sw2 spec --schema` prints the JSON schema; `sw2 spec --reference` prints this page with the
plug-ins of `$SW2_PLUGINS` included. Unknown keys are refused with a "did you mean". Paths are relative to
the spec file.
"""


@dataclass
class Row:
    path: str
    type: str
    default: str
    description: str


@dataclass
class Section:
    title: str
    doc: str
    rows: list[Row] = field(default_factory=list)


def sections() -> list[Section]:
    """Every section of the spec, the top level first, each nested one after the section holding it."""
    out: list[Section] = []
    _walk(Spec, "", "top level", _doc(Spec, "A spec's top-level keys."), out)
    return out


def _walk(cls: type[BaseModel], prefix: str, title: str, doc: str, out: list[Section], skip: tuple = ()) -> None:
    """`cls`'s fields as a section of `out`, then the sections its fields hold (depth first)."""
    section = Section(title, doc, [_row(prefix + n, f) for n, f in cls.model_fields.items() if n not in skip])
    out.append(section)
    for name, f in cls.model_fields.items():
        if name not in skip:
            _walk_field(prefix + name, f, out)


def _walk_field(path: str, f: FieldInfo, out: list[Section]) -> None:
    picker = next((m for m in f.metadata if isinstance(m, Options)), None)
    if picker is not None:  # `name` picks a plug-in: its options documented once each, `name` once above them
        base = get_origin(f.annotation) or f.annotation
        _walk(base, path + ".", path, _sentence(_text(f.description or "")), out)
        for plugin in [*picker.special, *picker.registry.names()]:
            options = picker.options_of(plugin)
            _walk(options, path + ".", f"{path}: {plugin}", _doc(options, ""), out, skip=("name",))
        return
    nested = _nested(f.annotation)
    for suffix, tag, model in nested:
        if tag is not None:  # a discriminated union (tests: kind)
            _walk(model, path + suffix + ".", f"{path}{suffix} (kind: {tag})", _doc(model, ""), out)
    plain = [(suffix, model) for suffix, tag, model in nested if tag is None]
    if len(plain) == 1:
        suffix, model = plain[0]
        _walk(model, path + suffix + ".", path + suffix, _doc(model, _text(f.description or "")), out)
    elif plain:  # alternatives without a tag (tune's distributions): one table, a row per form
        merged = Section(path + plain[0][0], "One of the forms below.")
        for suffix, model in plain:
            merged.rows += [_row(f"{path}{suffix}.{n}", g) for n, g in model.model_fields.items()]
        out.append(merged)


def _row(path: str, f: FieldInfo) -> Row:
    kind = _type(f.annotation, f.metadata)
    below = _first_below(path, f)
    return Row(path, kind + (f" ([below](#{anchor(below)}))" if below else ""), _default(f), _text(f.description or ""))


def _first_below(path: str, f: FieldInfo) -> str | None:
    """The title of the first section that `_walk_field` writes for this field, if any."""
    if any(isinstance(m, Options) for m in f.metadata):
        return path
    nested = _nested(f.annotation)
    tagged = [(suffix, tag) for suffix, tag, _ in nested if tag is not None]
    if tagged:
        return f"{path}{tagged[0][0]} (kind: {tagged[0][1]})"
    return path + nested[0][0] if nested else None


def _nested(ann: Any, suffix: str = "") -> list[tuple[str, str | None, type[BaseModel]]]:
    """The pydantic models a field's annotation can hold: (path suffix, union tag or None, model); a list
    adds `[]` to the path, a mapping `.<key>`."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [(suffix, None, ann)]
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        found = _nested(args[0], suffix)
        tag = next((m.tag for m in args[1:] if isinstance(m, Tag)), None)
        return [(s, tag or t, m) for s, t, m in found]
    if origin in (list, tuple, set):
        return [n for a in args if a is not Ellipsis for n in _nested(a, suffix + "[]")]
    if origin is dict:
        return _nested(args[1], suffix + ".<field>")
    return [n for a in args for n in _nested(a, suffix)]


def _type(ann: Any, metadata: list[Any] = ()) -> str:  # type: ignore[assignment]
    """A field's type in YAML's words: choices, limits, `null` where it may be left unset."""
    choices = next((m for m in metadata if isinstance(m, OneOf)), None)
    if choices is not None:
        return " \\| ".join(choices.names()) + _limits(metadata)
    plain = _plain(ann)
    return plain + _limits(metadata, "character" if plain.startswith("string") else "item")


def _plain(ann: Any) -> str:
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return _type(args[0], list(args[1:]))
    if origin is Literal:
        return " \\| ".join(_value(a) for a in args)
    if origin in (Union, types.UnionType):
        return " \\| ".join(dict.fromkeys(_plain(a) for a in args))
    if origin is list:
        return f"list of {_plain(args[0])}"
    if origin is dict:
        return f"{{{_plain(args[0])}: {_plain(args[1])}}}"
    if origin is tuple:
        return "[" + ", ".join(_plain(a) for a in args) + "]"
    if ann is type(None):
        return "null"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "section"
    names = {int: "int", float: "number", str: "string", bool: "bool"}
    return names.get(ann, "any")


def _limits(metadata: list[Any], unit: str = "item") -> str:
    words = []
    for m in metadata:
        if isinstance(m, FieldInfo):
            words += [_limits(m.metadata, unit).removeprefix(", ")] if m.metadata else []
        elif isinstance(m, at.Ge):
            words.append(f">= {m.ge}")
        elif isinstance(m, at.Gt):
            words.append(f"> {m.gt}")
        elif isinstance(m, at.Le):
            words.append(f"<= {m.le}")
        elif isinstance(m, at.Lt):
            words.append(f"< {m.lt}")
        elif isinstance(m, at.MultipleOf):
            words.append(f"a multiple of {m.multiple_of}")
        elif isinstance(m, at.MinLen):
            words.append(f"at least {m.min_length} {unit}{'s' if m.min_length != 1 else ''}")
        elif getattr(m, "pattern", None):
            words.append(f"matching `{m.pattern}`")
    return "".join(f", {w}" for w in words if w)


def _default(f: FieldInfo) -> str:
    if f.is_required():
        return "required"
    value = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{_value(value)}`"


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list | dict):
        return json.dumps(value)
    return str(value)


def _doc(cls: type[BaseModel], fallback: str) -> str:
    """The class's docstring as one paragraph (pydantic's own BaseModel docstring is none of ours), else
    `fallback` (the field's description) as a sentence."""
    doc = cls.__doc__ if cls.__doc__ and cls.__doc__ is not BaseModel.__doc__ else ""
    return _text(doc) or _sentence(fallback)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if not text or text[-1] in ".!?)" else ".")


def _text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def _space(text: str) -> str:
    return f" {text}" if text else ""


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def render(found: list[Section] | None = None) -> str:
    found = sections() if found is None else found
    lines = [HEADER, "Sections: " + ", ".join(f"[{s.title}](#{anchor(s.title)})" for s in found) + ".", ""]
    for s in found:
        lines += [f"## {s.title}", ""]
        lines += [s.doc, ""] if s.doc else []
        if not s.rows:
            lines += ["No options of its own.", ""]
            continue
        lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
        lines += [f"| `{r.path}` | {r.type} | {r.default} | {r.description} |" for r in s.rows]
        lines.append("")
    return "\n".join(lines)


def undocumented(found: list[Section] | None = None) -> list[str]:
    """The fields (section: path) without a description."""
    found = sections() if found is None else found
    return [f"{s.title}: {r.path}" for s in found for r in s.rows if not r.description]


ROW = re.compile(r"^\| `([^`]+)` \|")


def field_paths(markdown: str) -> set[str]:
    """The fields a reference names, as 'section: path' (a path may recur under several models)."""
    found, title = set(), ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
        elif m := ROW.match(line):
            found.add(f"{title}: {m.group(1)}")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sw2.spec_reference", description=__doc__.splitlines()[0])
    p.add_argument("file", nargs="?", default=str(DEFAULT_PATH), help="where to write it (default docs/spec.md)")
    p.add_argument("--check", action="store_true", help="exit 1 if FILE differs from a fresh generation")
    args = p.parse_args(argv)
    path, fresh = Path(args.file), render()
    if args.check:
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        if old != fresh:
            raise SystemExit(f"{path} is out of date with the schema; regenerate it with `{REGENERATE}`")
        return 0
    write_file(path, fresh)
    info(f"spec reference written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
