"""`include:` followed the way the proxy follows it: each listed file read next to the config that
declares it (or next to the root config), its sections merged into the config's, each file once.
"""

from __future__ import annotations

import os
from typing import Any

from .source import LoadError, Loc, YList, YMap, kind_of, load_yaml_file

INCLUDE_KEY = "include"


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
            raise LoadError(f"{loc.place()}: included file `{entry}` not found (looked for {included_path})")
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
        raise LoadError(f"{config.loc_of(INCLUDE_KEY).place()}: `include` must be a list of file paths, "
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
