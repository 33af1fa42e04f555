"""YAML read with the line of every key and value, and duplicate keys refused, so that each
problem can name its line."""

from __future__ import annotations

from typing import Any

import yaml

from engine.errors import SuratDesaError

# --------------------------------------------------------------------------- YAML with lines


class _Map(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers the lines (1-based) of itself, its keys and values."""

    line: int
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]

    def kline(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)

    def vline(self, key: Any) -> int:
        return self.value_lines.get(key, self.line)


class _Seq(list):  # type: ignore[type-arg]
    line: int
    item_lines: list[int]


class _DuplicateKey(SuratDesaError):
    def __init__(self, line: int, key: object) -> None:
        self.line = line
        self.key = key


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    m = _Map()
    m.line = node.start_mark.line + 1
    m.key_lines, m.value_lines = {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            duplicate = key in m
        except TypeError:  # unhashable key, e.g. a list
            raise _DuplicateKey(line, None) from None
        if duplicate:
            raise _DuplicateKey(line, key)
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = line
        m.value_lines[key] = value_node.start_mark.line + 1
    return m


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    s = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    s.line = node.start_mark.line + 1
    s.item_lines = [child.start_mark.line + 1 for child in node.value]
    return s


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
