"""What a rule reports: a `Finding` with its code, severity, place, message and fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .source import Loc

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")  # most severe first: the report sorts by it


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    file: str
    line: int | None
    message: str
    fix: str


def finding(code: str, severity: Severity, loc: Loc, message: str, fix: str) -> Finding:
    return Finding(code, severity, loc.file, loc.line, message, fix)


def invalid(loc: Loc, message: str, fix: str) -> Finding:
    """A value of the wrong type: reported, never raised, so the other rules still run."""
    return finding("invalid-config", "error", loc, message, fix)
