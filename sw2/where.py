"""The `where:` of a model test: a small, safe grammar for slicing table rows, evaluated by sw2 itself.

    bill_length_mm > 45 and island == 'Dream'        18 <= age < 65        island in ['Dream', 'Biscoe']
    not (sex == 'male') or isna(sex)                 `body mass` >= 4000   (backticks: a name with spaces)

Column names, numbers, strings, True/False/None, comparisons (chained too), `in` / `not in` lists,
`and` / `or` / `not` (and pandas' `&` / `|` / `~`), and `isna(col)` / `notna(col)`. Nothing else parses:
no attributes, calls, subscripts, arithmetic or dunder names, so a spec (or a bundle someone else wrote)
cannot make sw2 run code. `parse` runs at spec validation; `evaluate` turns a parsed expression into a
row mask. (pandas' `DataFrame.eval` is not used: it evaluates Python.)
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

MAX_LENGTH = 1000  # longer expressions are refused: a slice needs no more, and deep nesting costs the parser

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_CHECKS = ("isna", "notna")
_BACKTICKED = re.compile(r"`([^`]*)`")


class Where:
    """A parsed `where:` expression: its tree and the column names it reads."""

    def __init__(self, text: str, tree: ast.expr, columns: dict[str, str]) -> None:
        self.text, self.tree = text, tree
        self._names = columns  # identifier in the tree -> column name (backticked names are renamed)

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(self._names.values()))

    def evaluate(self, frame: Any) -> Any:
        """A boolean numpy array, one value per row of `frame` (a pandas DataFrame)."""
        import numpy as np
        import pandas as pd

        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            cols = ", ".join(map(str, frame.columns[:20]))
            raise ValueError(f"no column '{missing[0]}' (columns: {cols})")
        value = _Evaluator(frame, self._names).visit(self.tree)
        if isinstance(value, pd.Series) and (value.dtype == bool or value.map(type).eq(bool).all()):
            return value.fillna(False).to_numpy(dtype=bool)
        if isinstance(value, bool | np.bool_):  # a constant: every row or none
            return np.full(len(frame), bool(value))
        raise ValueError("it is not a condition (compare a column, e.g. age > 30)")


def parse(text: str) -> Where:
    """Parse and check `text`; a ValueError says what is not allowed."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"longer than {MAX_LENGTH} characters")
    columns: dict[str, str] = {}

    def rename(m: re.Match[str]) -> str:
        name = f"_sw2_col{len(columns)}"
        columns[name] = m.group(1)
        return name

    source = _BACKTICKED.sub(rename, text)
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as err:
        raise ValueError(f"not a valid expression ({err.msg})") from None
    except (RecursionError, MemoryError):
        raise ValueError("nested too deeply") from None
    _check(tree, columns)
    return Where(text, tree, columns)


MAX_DEPTH = 32  # nesting deeper than a slice needs is refused (evaluating it recurses)


def _check(node: ast.AST, columns: dict[str, str], depth: int = 0) -> None:
    """Refuse every node outside the grammar; collect the column names."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} deep")
    if isinstance(node, ast.BoolOp | ast.Compare):
        if isinstance(node, ast.Compare) and not all(isinstance(o, (*_COMPARE, ast.In, ast.NotIn)) for o in node.ops):
            raise ValueError("only == != < <= > >= in and not in compare")
        children = node.values if isinstance(node, ast.BoolOp) else [node.left, *node.comparators]
        for child in children:
            _check(child, columns, depth + 1)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
        _check(node.left, columns, depth + 1)
        _check(node.right, columns, depth + 1)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert):
        _check(node.operand, columns, depth + 1)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        if not isinstance(node.operand, ast.Constant) or not _number(node.operand.value):
            raise ValueError("a sign goes before a number only")
    elif isinstance(node, ast.Constant):
        if not (node.value is None or isinstance(node.value, str | bool) or _number(node.value)):
            raise ValueError(f"{node.value!r} is not a number, a string, True, False or None")
    elif isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            signed = isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub | ast.UAdd)
            if not isinstance(item, ast.Constant) and not signed:
                raise ValueError("a list holds numbers and strings only")
            _check(item, columns, depth + 1)
    elif isinstance(node, ast.Name):
        if node.id.startswith("__"):
            raise ValueError(f"'{node.id}' is not allowed")
        columns.setdefault(node.id, node.id)
    elif isinstance(node, ast.Call):
        f = node.func
        if not (isinstance(f, ast.Name) and f.id in _CHECKS and len(node.args) == 1 and not node.keywords):
            raise ValueError("the only calls are isna(column) and notna(column)")
        if not isinstance(node.args[0], ast.Name):
            raise ValueError(f"{f.id}() takes a column name")
        _check(node.args[0], columns, depth + 1)
    else:
        what = {ast.Attribute: "attributes (a.b)", ast.Subscript: "subscripts (a[0])", ast.BinOp: "arithmetic"}
        raise ValueError(f"{what.get(type(node), type(node).__name__)} not allowed")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Evaluator:
    """Walks a checked tree over a DataFrame: columns become Series, the rest plain values."""

    def __init__(self, frame: Any, names: dict[str, str]) -> None:
        self.frame, self.names = frame, names

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self.frame[self.names[node.id]]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            value = self.visit(node.operand)
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.UAdd):
                return value
            return ~_as_mask(value) if hasattr(value, "index") else not value
        if isinstance(node, ast.List | ast.Tuple):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.Call):
            column = self.visit(node.args[0])
            return column.isna() if node.func.id == "isna" else column.notna()  # type: ignore[attr-defined]
        if isinstance(node, ast.BoolOp | ast.BinOp):
            values = [self.visit(v) for v in (node.values if isinstance(node, ast.BoolOp) else [node.left, node.right])]
            both = isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And)
            both = both or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd))
            out = _as_mask(values[0])
            for v in values[1:]:
                out = (out & _as_mask(v)) if both else (out | _as_mask(v))
            return out
        if isinstance(node, ast.Compare):
            left, out = self.visit(node.left), True
            for op, right_node in zip(node.ops, node.comparators):
                right = self.visit(right_node)
                out = out & _compare(op, left, right)
                left = right
            return out
        raise ValueError(f"{type(node).__name__} not allowed")  # _check refused it already


def _as_mask(value: Any) -> Any:
    """A condition's rows: a bool column (missing = False) or a constant; a column of other values is refused."""
    import pandas as pd

    if not isinstance(value, pd.Series):
        return bool(value)
    if value.dtype != bool and not value.dropna().map(type).eq(bool).all():
        raise ValueError(f"column '{value.name}' is not a condition (compare it, e.g. {value.name} > 0)")
    return value.fillna(False).astype(bool)


def _compare(op: ast.cmpop, left: Any, right: Any) -> Any:
    import pandas as pd

    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(right, list):
            raise ValueError("'in' takes a list, e.g. island in ['Dream', 'Biscoe']")
        found = left.isin(right) if isinstance(left, pd.Series) else left in right
        return ~found if isinstance(op, ast.NotIn) else found
    if isinstance(left, list) or isinstance(right, list):
        raise ValueError("a list goes after 'in'")
    try:
        return _COMPARE[type(op)](left, right)
    except TypeError as err:  # e.g. a text column compared with a number
        raise ValueError(f"cannot compare ({err})") from None
