"""Where the CLI's own output goes (its tables and result lines), chosen by who reads stdout.

A person at a terminal gets rich: colours and boxed tables. A pipe or a file (CI logs) gets plain text: no
markup, no escape codes, no wrapping at 80 columns, tables as aligned columns without box characters. Under
`--log-format json` (sw2.log.formatted) every table or line is one JSON object on stdout, like the log's
events, so that stdout holds JSON alone.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sw2 import log


class Output:
    """The CLI's `console`: `print` a rich Table or a line (rich markup allowed), `event` a record for JSON."""

    def __init__(self) -> None:
        self._rich: Console | None = None

    @property
    def json(self) -> bool:
        return log.json_output()

    def print(self, *objects: Any, **options: Any) -> None:
        """Each object as the reader of stdout wants it; `options` (rich's print options) on a terminal only."""
        if log.interactive():
            self._rich = self._rich or Console()  # writes to whatever sys.stdout is at the time
            self._rich.print(*objects, **options)
            return
        for obj in objects:
            if isinstance(obj, Table):
                self._write(table_record(obj) if self.json else plain_table(obj))
            elif self.json:
                self._write({"event": "log", "level": "info", "message": plain(obj)})
            else:
                self._write(plain(obj))

    def event(self, kind: str, **fields: Any) -> None:
        """A result as a JSON object (only under --log-format json; text shows its table or line instead)."""
        self._write({"event": kind, **fields})

    def _write(self, out: str | dict[str, Any]) -> None:
        sys.stdout.write((log.json_line(out) if isinstance(out, dict) else out) + "\n")


def plain(obj: Any) -> str:
    """Text without rich markup ("[red]FAIL[/]" -> "FAIL")."""
    if isinstance(obj, Text):
        return obj.plain
    return Text.from_markup(obj).plain if isinstance(obj, str) else str(obj)


def _cells(table: Table) -> tuple[list[str], list[list[str]]]:
    headers = [plain(c.header).replace("\n", " ") for c in table.columns]
    columns = [[plain(cell).replace("\n", " ") for cell in c.cells] for c in table.columns]
    return headers, [list(row) for row in zip(*columns)]


def plain_table(table: Table) -> str:
    """The table as aligned text: its title on a line, then a header line (if any column has a header) and one
    line per row, columns two spaces apart, right-aligned where the table says, no trailing spaces."""
    headers, rows = _cells(table)
    shown = [headers, *rows] if any(headers) else rows
    widths = [max(cell_len(r[i]) for r in shown) for i in range(len(headers))]
    rights = [c.justify == "right" for c in table.columns]
    lines = [plain(table.title)] if table.title else []
    for r in shown:
        lines.append("  ".join(_pad(c, w, right) for c, w, right in zip(r, widths, rights)).rstrip())
    return "\n".join(lines)


def _pad(cell: str, width: int, right: bool) -> str:
    gap = " " * (width - cell_len(cell))
    return gap + cell if right else cell + gap


def table_record(table: Table) -> dict[str, Any]:
    """The table as {"event": "table", "title", "columns", "rows"}: each row a list of its cells, a number where
    the cell reads as one."""
    headers, rows = _cells(table)
    return {
        "event": "table",
        "title": plain(table.title) if table.title else "",
        "columns": headers,
        "rows": [[_number(c) for c in r] for r in rows],
    }


def _number(cell: str) -> Any:
    """A cell written as a number ("0.9500", "18,565", "-3", "1e-05") as that number; any other as its text."""
    text = cell.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", cell) else cell
    if not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        return cell
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
