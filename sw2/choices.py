"""Spec fields whose values are read from a registry (`sw2.plugins`), checked when a spec is validated.

- `OneOf(REGISTRY, *extra)` on a `str` field: the value must be a registered name (or one of `extra`,
  e.g. "auto"); a wrong one is refused with "did you mean"; the JSON schema lists the names as an enum.
- `Options(REGISTRY, special)` on a section whose `name` picks a plug-in that declares its own options
  (a model: `options`, a pydantic class): the section is validated as that class, so an option of another
  plug-in is an unknown key; the JSON schema is one entry per name (`oneOf`). Names in `special` (auto)
  map to classes of their own.

Both read the registry at validation and at schema time, never at import: a plug-in registered after
the spec classes were built (a test's, a package's) is valid at once, and `import sw2.spec` stays light.
They read only what a plug-in declares (`Registry.about`: a model's options, a task's metrics), so
validating a spec imports no plug-in's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from sw2.registry import Registry, did_you_mean

UNKNOWN = "unknown_choice"  # the error type of a name that no plug-in has


class OneOf:
    def __init__(self, registry: Registry[Any] | TaskMetrics, *extra: str) -> None:
        self.registry = registry
        self.extra = extra

    def names(self) -> list[str]:
        return [*self.extra, *self.registry.names()]

    def check(self, value: str) -> str:
        if value not in self.extra and value not in self.registry:
            hint = did_you_mean(value, self.names())
            raise PydanticCustomError(UNKNOWN, f"unknown {self.registry.kind} '{value}'; {hint}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        return {**handler(schema), "enum": self.names()}


class TaskMetrics:
    """The metrics the registered tasks report, as a registry-like view for `OneOf`: a metric test or the
    spec's `metrics:` must name one of them (did-you-mean, JSON-schema enum); the spec's task then checks that
    it is one of its own (`Task.check_spec`, `Task.validate_tests`)."""

    kind = "metric"

    def __init__(self, tasks: Registry[Any]) -> None:
        self.tasks = tasks

    def names(self) -> list[str]:
        return sorted({m for name in self.tasks.names() for m in self.tasks.about(name).metrics})

    def __contains__(self, name: object) -> bool:
        return name in self.names()


@dataclass(frozen=True)
class Options:
    """A registered plug-in's options (`registry.about(name)`: a subclass of the annotated base class, whose
    `name` field says which plug-in) validate the section; `special` names map to their own classes."""

    registry: Registry[Any]
    special: dict[str, type[BaseModel]] = field(default_factory=dict)

    def options_of(self, name: str) -> type[BaseModel]:
        """The options class of plug-in `name` (which must be registered or special)."""
        return self.special[name] if name in self.special else self.registry.about(name)

    def name_of(self, cls: type[BaseModel]) -> str | None:
        """The name `cls` is registered under (the first, if several), or None."""
        return next((n for n in [*self.special, *self.registry.names()] if self.options_of(n) is cls), None)

    def pick(self, raw: Any, base: type[BaseModel]) -> type[BaseModel]:
        """The class that validates `raw`: the named plug-in's, else `base` (whose `name` check refuses it)."""
        name = raw.get("name", base.model_fields["name"].default) if isinstance(raw, dict) else None
        known = isinstance(name, str) and (name in self.special or name in self.registry)
        return self.options_of(name) if known else base

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        base = _base(source)

        def validate(raw: Any) -> Any:
            if isinstance(raw, base):  # built in Python, e.g. ConvNetOptions(widths=[8]): its class names it
                given = raw.model_dump(exclude_unset=True)
                raw = given if "name" in given else {**given, "name": self.name_of(type(raw))}
            if not isinstance(raw, dict):
                return raw  # a wrong type, for the base schema to refuse
            cls = self.pick(raw, base)
            # an unknown name: validate it alone, so that its error comes first, not an option's
            return cls.model_validate(raw if cls is not base else {"name": raw.get("name")})

        return core_schema.no_info_before_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        entries = []
        for name in [*self.special, *self.registry.names()]:
            cls = self.options_of(name)
            resolved = handler.resolve_ref_schema(handler(cls.__pydantic_core_schema__))
            properties = {**resolved.get("properties", {}), "name": {"const": name, "default": name}}
            required = [*resolved.get("required", []), *([] if name in self.special else ["name"])]
            entries.append({**resolved, "title": name, "properties": properties, "required": required})
        return {"oneOf": entries}


def _base(source: Any) -> type[BaseModel]:
    """The options base class under `SerializeAsAny[...]` (an Annotated type) or as it is."""
    return getattr(source, "__origin__", source)
