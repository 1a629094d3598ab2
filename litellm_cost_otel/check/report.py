"""The report of one check and its renderings: text for people, a stable JSON shape for tools."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .findings import SEVERITIES, Finding
from .source import LoadError


@dataclass(frozen=True, slots=True)
class Report:
    path: str
    findings: list[Finding]

    def summary(self) -> dict[str, int]:
        return {severity: sum(f.severity == severity for f in self.findings) for severity in SEVERITIES}

    def exit_code(self, strict: bool) -> int:
        """1 for any error, or any finding at all with --strict; else 0."""
        return 1 if any(f.severity == "error" or strict for f in self.findings) else 0


def render_text(report: Report) -> str:
    lines: list[str] = []
    for f in report.findings:
        place = f"{f.file}:{f.line}" if f.line else f.file
        lines.append(f"{place}: {f.severity} [{f.code}] {f.message}")
        lines.append(f"    fix: {f.fix}")
    counts = report.summary()
    totals = ", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}" for s in SEVERITIES)
    lines.append(f"{report.path}: {totals}" if report.findings else f"{report.path}: no findings")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    return json.dumps({"path": report.path, "findings": [asdict(f) for f in report.findings],
                       "summary": report.summary()}, indent=2)


def render_load_error_json(path: str, error: LoadError) -> str:
    """The JSON shape of a report, with `error` set and no findings, for unreadable input."""
    return json.dumps({"path": path, "error": str(error), "findings": [],
                       "summary": dict.fromkeys(SEVERITIES, 0)}, indent=2)
