"""What sw2 says while it works goes to one logger, "sw2"; whoever runs sw2 chooses where it shows.

Library code calls `info` / `warning` and never prints. `sw2 train`, `sw2 doctor` and `verbose=True` in the
Python API show the messages on stdout for that call (`to_console`); from Python, calls are quiet by
default, as scikit-learn's are, and a program may configure `logging.getLogger("sw2")` like any other
logger instead. Warnings with no handler configured still reach stderr (Python's last-resort handler).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

logger = logging.getLogger("sw2")

F = TypeVar("F", bound=Callable[..., Any])


def info(message: str) -> None:
    logger.info(message)


def warning(message: str) -> None:
    logger.warning(message)


class _Plain(logging.Formatter):
    """The message as it is; a warning says so."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:  # logger.exception: the traceback too (a server's log must be diagnosable)
            text += "\n" + self.formatException(record.exc_info)
        return f"warning: {text}" if record.levelno >= logging.WARNING else text


@contextmanager
def to_console(enabled: bool = True) -> Iterator[None]:
    """For the block, sw2's messages (INFO and up) on stdout, one plain line each; nothing if not `enabled`
    or if an enclosing block already shows them."""
    if not enabled or any(getattr(h, "_sw2_console", False) for h in logger.handlers):
        yield
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Plain())
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
