"""`litellm-cost-otel check`: read a LiteLLM proxy config the way the proxy would, and report the
mistakes that make cost silently wrong or missing (docs/check.md).

The modules, in the order a config passes through them:

- source.py: the YAML with every value's file and line (Loc, YMap, YList), `LoadError`
- includes.py: `include:` followed and merged as the proxy does
- config.py: the sections and deployments the rules read (Config, Deployment, read_config)
- fallback_graph.py: the fallback routing litellm.Router would do
- findings.py: Finding, its severities
- rules.py: every rule, in the order they run; each theme in its module:
  registration.py, prices.py, fallbacks.py, residency.py, proxy_settings.py, environment.py,
  budgets.py
- report.py: Report, its text and JSON renderings

Anything that stops the config from being read at all is a `LoadError`: one line naming the
place, exit code 2.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import read_config
from .findings import SEVERITIES
from .includes import load_config
from .report import Report, render_json, render_load_error_json, render_text
from .rules import RULES
from .source import LoadError

__all__ = ["LoadError", "Report", "check_file", "render_json", "render_load_error_json", "render_text"]

def check_file(path: str, environ: Mapping[str, str]) -> Report:
    """Check the config at `path` against the environment `environ` (only names are reported)."""
    root, duplicates, files = load_config(path)
    config = read_config(path, root, environ, duplicates)
    findings = [*config.problems, *(f for rule in RULES for f in rule(config))]
    # The order docs/check.md promises: by file (the config, then its includes), line, severity.
    file_order = {file: index for index, file in enumerate(files)}
    findings.sort(key=lambda f: (file_order.get(f.file, len(files)), f.line or 0, SEVERITIES.index(f.severity),
                                 f.code, f.message))
    return Report(path, findings)
