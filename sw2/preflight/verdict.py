"""A pre-flight verdict: PASS, WARN, FAIL (or SKIP, with why) with one line saying what was seen and what to do."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["PASS", "WARN", "FAIL", "SKIP"]  # SKIP: the check does not apply to this trainable


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
