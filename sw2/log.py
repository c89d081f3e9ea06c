"""What sw2 says while it works goes to one logger, "sw2"; whoever runs sw2 chooses where it shows.

Library code calls `info` / `warning` (or `event`, for a message that is also a structured record: an epoch,
a pre-flight verdict) and never prints. `sw2 train`, `sw2 doctor` and `verbose=True` in the Python API show
the messages on stdout for that call (`to_console`): one plain line each, or with `--log-format json`
(`formatted("json")`) one JSON object per message or event. From Python, calls are quiet by default, as
scikit-learn's are, and a program may configure `logging.getLogger("sw2")` like any other logger instead.
Warnings with no handler configured still reach stderr (Python's last-resort handler).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

logger = logging.getLogger("sw2")

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("text", "json")
_format = "text"  # what `to_console` shows: set by the CLI's --log-format for one command (`formatted`)


def info(message: str) -> None:
    logger.info(message)


def warning(message: str) -> None:
    logger.warning(message)


def event(kind: str, message: str, /, **fields: Any) -> None:
    """`message` as an info line, carrying the record {"event": kind, **fields} that JSON output shows instead."""
    logger.info(message, extra={"sw2_event": {"event": kind, **fields}})


@contextmanager
def formatted(name: str) -> Iterator[None]:
    """For the block, `to_console` shows `name` ("text" or "json") and `json_output()` says which."""
    global _format
    if name not in FORMATS:
        raise ValueError(f"log format '{name}': choose one of {', '.join(FORMATS)}")
    before, _format = _format, name
    try:
        yield
    finally:
        _format = before


def json_output() -> bool:
    """Whether output is one JSON object per line (--log-format json)."""
    return _format == "json"


def interactive() -> bool:
    """Whether a person watches stdout (a terminal, plain text): live displays (a progress bar) only then; a
    pipe or a file (CI logs) gets whole lines."""
    return _format == "text" and sys.stdout.isatty()


def json_line(record: dict[str, Any], when: float | None = None) -> str:
    """`record` as one line of JSON with its "time" (ISO 8601, UTC): NaN and infinities as null, anything else
    JSON lacks as its string."""
    stamp = datetime.datetime.fromtimestamp(time.time() if when is None else when, datetime.timezone.utc)
    return json.dumps({**_finite(record), "time": stamp.isoformat(timespec="milliseconds")}, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class _Plain(logging.Formatter):
    """The message as it is; a warning says so."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:  # logger.exception: the traceback too (a server's log must be diagnosable)
            text += "\n" + self.formatException(record.exc_info)
        return f"warning: {text}" if record.levelno >= logging.WARNING else text


class _Json(logging.Formatter):
    """One JSON object per record: its event's fields, or {"event": "log", "level", "message"}."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "sw2_event", None)
        if fields is None:
            fields = {"event": "log", "level": record.levelname.lower(), "message": record.getMessage()}
            if record.exc_info:
                fields["traceback"] = self.formatException(record.exc_info)
        return json_line(fields, record.created)


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever `sys.stdout` is when a record comes: a live display that takes stdout over
    (rich's progress bar) shows the lines above itself; a caller's redirect_stdout gets them."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


@contextmanager
def to_console(enabled: bool = True) -> Iterator[None]:
    """For the block, sw2's messages (INFO and up) on stdout, one line each (plain, or JSON under
    `formatted("json")`); nothing if not `enabled` or if an enclosing block already shows them."""
    if not enabled or any(getattr(h, "_sw2_console", False) for h in logger.handlers):
        yield
        return
    handler = _Stdout()
    handler.setFormatter(_Json() if json_output() else _Plain())
    handler._sw2_console = True  # type: ignore[attr-defined]
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # shown here once, not again by a root handler
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def speaks(fn: F) -> F:
    """A public call whose `verbose=True` shows its messages on the console (default: quiet)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with to_console(bool(kwargs.get("verbose", False))):
            return fn(*args, **kwargs)

    return call  # type: ignore[return-value]
