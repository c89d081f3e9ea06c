"""A named registry for plug-ins (models, data sources, optimizers, schedules, tasks): add one with a decorator.

A plug-in is registered by importing the module that defines it (`register`). A built-in one is also
declared (`declare`): its name, the module that registers it, and what the spec reads of it without
importing that module (a model's options class, a task's metrics and checks: `about`). Declared names are
valid choices at once, and the module, which may import torch, is imported only when the plug-in itself is
asked for (`get`), so validating a spec imports no plug-in.

A registry may be given modules to import the first time a name is needed (`get`, `about`, `names`, `in`),
never when the registry is created: the light modules that declare its built-ins, or, for a registry the
spec does not read, the plug-ins themselves (a package stands for every module inside it). The modules
named in $SW2_PLUGINS (comma-separated, importable) load with them in every registry: a plug-in of yours (a
task, a model) in one file that registers itself is then a choice for the CLI as for Python.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from sw2.errors import UserError

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """'did you mean X?' for the closest choice, else the list of choices (text to append after '; ')."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"choose one of: {', '.join(choices)}"


class Registry(Generic[T]):
    def __init__(self, kind: str, *plugins: str, about: Callable[[T], Any] = lambda item: item) -> None:
        """`kind` names an entry in messages ("model"); `plugins` are the modules to import when a name is first
        needed; `about` is what the spec reads of a registered plug-in (a model class: its `options`)."""
        self.kind = kind
        self.plugins = plugins
        self._about = about
        self._items: dict[str, T] = {}
        self._declared: dict[str, tuple[str, Any]] = {}  # name -> (the module that registers it, its `about`)
        self._loaded: str | None = None  # the $SW2_PLUGINS its plug-ins were loaded with

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            self._items[name] = item
            return item

        return add

    def declare(self, name: str, module: str, about: Any = None) -> None:
        """A built-in plug-in `name`, registered by `module` when it is first asked for (`get`); `about` is
        what the spec reads of it until then (e.g. a model's options class)."""
        self._declared[name] = (module, about)

    def unregister(self, name: str) -> None:
        """Forget a plug-in (a test's own, say); a built-in would come back only in a new process."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """The plug-in itself, its module imported if it was only declared."""
        self._known(name)
        if name not in self._items:
            importlib.import_module(self._declared[name][0])  # which registers it
        return self._items[name]

    def about(self, name: str) -> Any:
        """What the spec reads of plug-in `name`, without importing a declared one's module."""
        self._known(name)
        return self._about(self._items[name]) if name in self._items else self._declared[name][1]

    def names(self) -> list[str]:
        self._load()
        return sorted({*self._items, *self._declared})

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items or name in self._declared

    def _known(self, name: str) -> None:
        if name not in self:
            raise UserError(f"unknown {self.kind} '{name}'; {did_you_mean(name, self.names())}")

    def _load(self) -> None:
        """Import the modules that declare or register the plug-ins, once for each value of $SW2_PLUGINS. A
        module that is still half imported when a name is first needed (an import cycle) registers the rest of
        its plug-ins when its import ends, as every module does."""
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
