"""A pre-flight verdict: PASS, WARN or FAIL with one line saying what was seen and what to do."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["PASS", "WARN", "FAIL"]


@dataclass
class Verdict:
    check: str
    status: Status
    message: str

    def line(self) -> str:
        """How the CLI shows it: `check PASS  name: message`."""
        return f"check {self.status:4}  {self.check}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
