"""Reading a YAML file strictly: UTF-8 only, a key given twice is an error, problems as one line with the place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sw2.errors import UserError


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (not the last one kept)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: the base class says so
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    f"first at line {seen[key]}", None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> Any:
    """The YAML file's content, as UTF-8 text, with duplicate keys refused; one-line errors with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at position {err.start}); "
            f"save the file as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "malformed YAML"
        if problem.startswith("duplicate key"):
            first = getattr(err, "context", "")
            raise UserError(f"{path}: {problem}{at} ({first}); keep one of them") from None
        raise UserError(f"{path}: malformed YAML{at}: {problem}; fix the indentation or quoting") from None
