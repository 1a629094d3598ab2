"""`litellm-cost-otel check`: read a LiteLLM proxy config the way the proxy would, and report the
mistakes that make cost silently wrong (docs/check.md).

This module reads the YAML with PyYAML's node API, so every value keeps its file and line,
follows `include:` like the proxy, runs the rules of check_rules.py and renders the report.
Anything that stops the config from being read at all is a `LoadError`: one line naming the
place, exit code 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from .check_rules import RULES, SEVERITIES, Finding, Loc, YList, YMap, kind_of, read_config

INCLUDE_KEY = "include"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: a large file in seconds


class LoadError(Exception):
    """The config cannot be read at all. The message is one line and names the place."""


@dataclass(frozen=True, slots=True)
class Report:
    path: str
    findings: list[Finding]

    def summary(self) -> dict[str, int]:
        return {severity: sum(f.severity == severity for f in self.findings) for severity in SEVERITIES}

    def exit_code(self, strict: bool) -> int:
        """1 for any error, or any finding at all with --strict; else 0."""
        return 1 if any(f.severity == "error" or strict for f in self.findings) else 0


def check_file(path: str, environ: Mapping[str, str]) -> Report:
    """Check the config at `path` against the environment `environ` (only names are reported)."""
    root, duplicates, files = load_config(path)
    config = read_config(path, root, environ, duplicates)
    findings = [*config.problems, *(f for rule in RULES for f in rule(config))]
    file_order = {file: index for index, file in enumerate(files)}
    findings.sort(key=lambda f: (file_order.get(f.file, len(files)), f.line or 0, SEVERITIES.index(f.severity),
                                 f.code, f.message))
    return Report(path, findings)


# --- reading ----------------------------------------------------------------------------------

def load_config(path: str) -> tuple[YMap, list[tuple[Any, Loc]], list[str]]:
    """The config with its includes merged in as the proxy merges them (lists are extended, other
    values replaced), the duplicate keys seen, and the files read in order."""
    root, duplicates = load_yaml_file(path)
    files = [path]
    loaded = {os.path.abspath(path)}
    pending = [(entry, loc, path) for entry, loc in _include_entries(root)]
    while pending:
        entry, loc, declared_in = pending.pop(0)
        included_path = _include_path(entry, declared_in, path)
        if os.path.abspath(included_path) in loaded:
            continue
        if not os.path.isfile(included_path):
            raise LoadError(f"{_place(loc)}: included file `{entry}` not found (looked for {included_path})")
        loaded.add(os.path.abspath(included_path))
        files.append(included_path)
        included, more_duplicates = load_yaml_file(included_path)
        duplicates.extend(more_duplicates)
        pending.extend((e, where, included_path) for e, where in _include_entries(included))
        root = _merged(root, included)
    root.pop(INCLUDE_KEY, None)
    return root, duplicates, files


def _include_entries(config: YMap) -> list[tuple[str, Loc]]:
    entries = config.get(INCLUDE_KEY)
    if entries is None:
        return []
    if not isinstance(entries, YList) or not all(isinstance(entry, str) for entry in entries):
        raise LoadError(f"{_place(config.loc_of(INCLUDE_KEY))}: `include` must be a list of file paths, "
                        f"not {kind_of(entries)}")
    return [(entry, entries.loc_of(i)) for i, entry in enumerate(entries)]


def _include_path(entry: str, declared_in: str, root_path: str) -> str:
    """Next to the config that declares it; the proxy also accepts one next to the root config."""
    beside_declaring = os.path.join(os.path.dirname(declared_in), entry)
    beside_root = os.path.join(os.path.dirname(root_path), entry)
    return beside_root if not os.path.exists(beside_declaring) and os.path.exists(beside_root) else beside_declaring


def _merged(base: YMap, included: YMap) -> YMap:
    merged = YMap(base.loc)
    for key in [*base, *(key for key in included if key not in base)]:
        if key == INCLUDE_KEY:
            continue
        if key not in included:
            merged[key], merged.key_locs[key] = base[key], base.loc_of(key)
        elif isinstance(base.get(key), YList) and isinstance(included[key], YList):
            extended = YList(base[key].loc)
            extended.extend([*base[key], *included[key]])
            extended.item_locs = [*base[key].item_locs, *included[key].item_locs]
            merged[key], merged.key_locs[key] = extended, base.loc_of(key)
        else:
            merged[key], merged.key_locs[key] = included[key], included.loc_of(key)
    return merged


def load_yaml_file(path: str) -> tuple[YMap, list[tuple[Any, Loc]]]:
    """One YAML file as a YMap whose values know their line, and the keys written twice."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LoadError(f"{path}: is a directory, not a config file") from None
    except OSError as error:
        raise LoadError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LoadError(f"{path}:{line}: not UTF-8 text (byte {error.start}): is it a YAML file?") from None
    try:
        node = yaml.compose(text, Loader=_LOADER)
        if node is None:
            raise LoadError(f"{path}: the file is empty: expected a mapping with model_list, litellm_settings, ...")
        builder = _Builder(path)
        root = builder.build(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        place = f"{path}:{mark.line + 1}" if mark else path
        what = " ".join(part for part in (error.context, error.problem) if part) or str(error)
        raise LoadError(f"{place}: invalid YAML: {_one_line(what)}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise LoadError(f"{path}:{line}: invalid YAML: {_one_line(error.reason)} "
                        f"(character {error.character!r})") from None
    except yaml.YAMLError as error:
        raise LoadError(f"{path}: invalid YAML: {_one_line(str(error))}") from None
    except RecursionError:
        raise LoadError(f"{path}: nested too deeply to be a proxy config") from None
    if not isinstance(root, YMap):
        raise LoadError(f"{path}:{node.start_mark.line + 1}: the config must be a mapping of sections "
                        f"(model_list, litellm_settings, ...), not {kind_of(root)}")
    return root, builder.duplicates


class _Builder:
    """Composed YAML nodes to YMap / YList / plain scalars. Shared nodes (anchors and aliases)
    become shared objects, so an alias bomb stays as small as its text."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.scalars = yaml.constructor.SafeConstructor()  # YAML 1.1 scalars exactly as safe_load reads them
        self.built: dict[int, YMap | YList] = {}
        self.duplicates: list[tuple[Any, Loc]] = []

    def loc(self, node: yaml.Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1)

    def build(self, node: yaml.Node) -> Any:
        if id(node) in self.built:
            return self.built[id(node)]
        if isinstance(node, yaml.SequenceNode):
            sequence = self.built[id(node)] = YList(self.loc(node))
            for item in node.value:
                sequence.append(self.build(item))
                sequence.item_locs.append(self.loc(item))
            return sequence
        if isinstance(node, yaml.MappingNode):
            return self._build_mapping(node)
        if node.tag == _STR_TAG:
            return node.value  # what the constructor would return, without its cost on a large file
        return self.scalars.construct_object(node)

    def _build_mapping(self, node: yaml.MappingNode) -> YMap:
        mapping = self.built[id(node)] = YMap(self.loc(node))
        merges = any(key_node.tag == _MERGE_TAG for key_node, _ in node.value)
        if merges:
            # A key merged in with `<<: *anchor` may be overridden: only keys written here are duplicates.
            self._note_duplicates([key_node for key_node, _ in node.value if key_node.tag != _MERGE_TAG])
            self.scalars.flatten_mapping(node)  # the merge, exactly as safe_load does it
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key in mapping and not merges:
                self.duplicates.append((key, self.loc(key_node)))
            mapping[key] = self.build(value_node)
            mapping.key_locs[key] = self.loc(key_node)
        return mapping

    def _note_duplicates(self, key_nodes: list[yaml.Node]) -> None:
        written: set[Any] = set()
        for key_node in key_nodes:
            key = self._key(key_node)
            if key in written:
                self.duplicates.append((key, self.loc(key_node)))
            written.add(key)

    def _key(self, node: yaml.Node) -> Any:
        key = self.build(node)
        if isinstance(key, YMap | YList):
            raise LoadError(f"{self.file}:{node.start_mark.line + 1}: a mapping key must be a plain value")
        return key


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _place(loc: Loc) -> str:
    return f"{loc.file}:{loc.line}" if loc.line else loc.file


# --- output -----------------------------------------------------------------------------------

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
