"""The declared litellm range admits every litellm version the suite runs on, and never the
compromised 1.107 line, in the dependency and in the `proxy` extra."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).parent.parent
TESTED_SETS = ("constraints-oldest.txt", "constraints.txt", "requirements-newest.txt")


def litellm_versions_tested() -> list[Version]:
    found = []
    for name in TESTED_SETS:
        match = re.search(r"^litellm==([\w.]+)", (ROOT / name).read_text(), re.MULTILINE)
        assert match, f"{name} pins no litellm"
        found.append(Version(match.group(1)))
    return found


def declared_litellm_requirements() -> list[Requirement]:
    """Every requirement on litellm in pyproject.toml (the dependency, the `proxy` extra)."""
    declared = re.findall(r'"(litellm(?:\[\w+\])?[<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text())
    return [Requirement(text) for text in declared]


def test_every_tested_litellm_is_admitted_and_1_107_never() -> None:
    tested = litellm_versions_tested()
    assert [str(version) for version in tested] == ["1.106.12", "1.108.7", "1.110.2"]
    requirements = declared_litellm_requirements()
    assert {str(r.extras) for r in requirements} == {"set()", "{'proxy'}"}
    for requirement in requirements:
        for version in tested:
            assert requirement.specifier.contains(version), (str(requirement), str(version))
        for compromised in ("1.107.0", "1.107.1", "1.107.9"):
            assert not requirement.specifier.contains(compromised), str(requirement)
        # Nothing newer than the newest tested line: a user's newer litellm is not claimed to work.
        assert not requirement.specifier.contains(f"{tested[-1].major}.{tested[-1].minor + 1}.0")


def test_installing_the_plugin_keeps_the_installed_litellm(tmp_path: Path) -> None:
    """`pip install litellm-cost-otel` into this environment (the oldest, the pinned or the
    newest litellm) resolves against the litellm already there, never down- or upgrades it."""
    import importlib.metadata
    import json
    import subprocess
    import sys

    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
                    str(ROOT)], check=True, timeout=600, capture_output=True)
    planned = {item["metadata"]["name"].lower(): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert set(planned) == {"litellm-cost-otel"}, planned  # everything else it needs is already there
    assert importlib.metadata.version("litellm") in [str(v) for v in litellm_versions_tested()]
