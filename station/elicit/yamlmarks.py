"""YAML loading that remembers where every value came from.

Protocol and manifest files are written by hand in a lab; a wrong value must be reported as
``protocols/x.yaml:12: rest.seconds must be ...`` so it can be fixed without reading code.
``yaml.safe_load`` forgets positions, so we compose the node graph (which carries marks) and
build plain Python values ourselves, recording the line of every mapping key and item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from station.checks import StationError

Path_ = tuple  # a field path such as ('rest', 'seconds') or ('clips', 3)


class Located:
    """Plain data loaded from a YAML file, plus the line of every field in it."""

    def __init__(self, file: Path, data: Any, lines: dict[Path_, int]):
        self.file, self.data, self.lines = file, data, lines

    def line(self, path: Path_) -> int | None:
        """Line (1-based) of ``path``, or of its nearest parent that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def where(self, path: Path_) -> str:
        """``'file:line: field a.b'`` — the prefix of every error about ``path``."""
        line = self.line(path)
        loc = f"{self.file}:{line}" if line else str(self.file)
        return f"{loc}: {dotted(path)}" if path else loc

    def error(self, path: Path_, message: str) -> StationError:
        return StationError(f"{self.where(path)} {message}")


def dotted(path: Path_) -> str:
    """('clips', 2, 'file') -> 'clips[2].file'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: dict) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise StationError(f"{key_node.start_mark.line + 1}: key {key!r} appears twice.")
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_located(path: str | Path, what: str) -> Located:
    """Read and parse ``path``; YAML syntax errors name the file, line and column."""
    path = Path(path)
    if not path.exists():
        raise StationError(f"{what} {str(path)!r} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise StationError(f"{what} {str(path)!r} cannot be read: {err}") from err
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        data = None if node is None else _build(loader, node, (), lines)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise StationError(f"{where}: not valid YAML ({err.problem or err}).") from err
    except StationError as err:
        raise StationError(f"{path}:{err}") from err
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise StationError(f"{path}: a {what} must be a YAML mapping (key: value lines), got "
                           f"{type(data).__name__}.")
    return Located(path, data, lines)
