"""The YAML source of a config: every mapping and sequence remembers the file and line it was
written at, so a finding can name its place.

PyYAML's node API (compose, not load) keeps the marks that safe_load drops; `_Builder` turns the
nodes into YMap / YList / plain scalars exactly as safe_load would read them. Anything that stops
a file from being read at all is a `LoadError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: a large file in seconds


class LoadError(Exception):
    """The config cannot be read at all. The message is one line and names the place."""


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a value was written: the file and its 1-based line (None: the value is absent)."""

    file: str
    line: int | None

    def place(self) -> str:
        """`file:line` for a message, or the file alone when the line is unknown."""
        return f"{self.file}:{self.line}" if self.line else self.file


class YMap(dict[Any, Any]):
    """A YAML mapping that remembers where it, and each of its keys, were written."""

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.key_locs: dict[Any, Loc] = {}

    def loc_of(self, key: Any) -> Loc:
        return self.key_locs.get(key, self.loc)


class YList(list[Any]):
    """A YAML sequence that remembers where it, and each of its items, were written."""

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.item_locs: list[Loc] = []

    def loc_of(self, index: int) -> Loc:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


def kind_of(value: Any) -> str:
    """How a message names a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


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

