"""A named registry for plug-ins (models, data sources, optimizers, schedules, tasks): add one with a decorator.

A registry may be given the modules that hold its built-in plug-ins. They are imported the first time a
name is needed (`get`, `names`, `in`), never when the registry is created, so a light module (the spec)
can hold a registry and validate names against it without importing torch at its own import. A module
path that is a package stands for every module inside it: a new plug-in is then one new file there that
registers itself, as a package's entry points would. The modules named in $SW2_PLUGINS (comma-separated,
importable) load with the built-ins of every registry: a plug-in of yours (a task, a model) in one file
is then a choice for the CLI as for Python.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from sw2.errors import UserError

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """'did you mean X?' for the closest choice, else the list of choices (text to append after '; ')."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"choose one of: {', '.join(choices)}"


class Registry(Generic[T]):
    def __init__(self, kind: str, *plugins: str) -> None:
        """`kind` names an entry in messages ("model"); `plugins` are the module paths of the built-ins."""
        self.kind = kind
        self.plugins = plugins
        self._items: dict[str, T] = {}
        self._loaded: str | None = None  # the $SW2_PLUGINS its plug-ins were loaded with

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            self._items[name] = item
            return item

        return add

    def unregister(self, name: str) -> None:
        """Forget a plug-in (a test's own, say); a built-in would come back only in a new process."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise UserError(f"unknown {self.kind} '{name}'; {did_you_mean(name, self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def _load(self) -> None:
        """Import the plug-ins (each registers itself), once for each value of $SW2_PLUGINS. A module that
        is still half imported when a name is first needed (an import cycle) registers the rest of its
        plug-ins when its import ends, as every module does."""
        users = os.environ.get("SW2_PLUGINS", "")
        if self._loaded == users:
            return
        for module in [m for path in self.plugins for m in _modules_at(path)]:
            importlib.import_module(module)
        for module in (m.strip() for m in users.split(",") if m.strip()):
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise UserError(f"$SW2_PLUGINS: cannot import '{module}' ({err}); fix the name or PYTHONPATH") from None
        self._loaded = users


def _modules_at(path: str) -> list[str]:
    """`path` itself, and every module inside it if it is a package."""
    module = importlib.import_module(path)
    inside = [f"{path}.{m.name}" for m in pkgutil.iter_modules(getattr(module, "__path__", []))]
    return [path, *sorted(inside)]
