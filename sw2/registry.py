"""A named registry for plug-ins (data sources, tasks, models): add one with a decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from sw2.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UserError(f"unknown {self.kind} '{name}'; choose one of: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)
