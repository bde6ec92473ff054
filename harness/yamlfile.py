"""Reading a YAML file the user handed over (profile, workload.yaml, kubeconfig): every way it can be wrong is one
:class:`ConfigError` line naming the file, never a traceback.

The ways seen in practice: a path that is a directory or unreadable (mode 000), a file that is not UTF-8 (a binary
handed over by mistake), one far too large to be configuration (a log or a core dump), a YAML syntax error, and a
key given twice (PyYAML silently keeps the last one, so the file would mean something else than it reads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

__all__ = ["MAX_BYTES", "StrictLoader", "display_path", "read_text", "read_yaml"]

#: Larger than any configuration file of the project by three orders of magnitude; anything bigger is a mistake.
MAX_BYTES = 16 * 1024 * 1024


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key (a mapping as a key): the constructor below names it
            first = None
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {first + 1})", key_node.start_mark
            )
        try:
            seen[key] = key_node.start_mark.line
        except TypeError:
            pass
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def display_path(path: Path) -> str:
    """The path as messages show it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def read_text(path: Path, what: str) -> str:
    """The file's text, or a :class:`ConfigError` ``"<what> <path>: <why>"``."""
    where = f"{what} {display_path(path)}" if what else display_path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{where}: is a directory, expected a file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{where}: {size} bytes, larger than any configuration file ({MAX_BYTES} at most)")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); is it a binary file?") from None


def read_yaml(path: Path, what: str = "") -> Any:
    """The file parsed strictly (safe types only, no duplicate keys); every problem a one-line ConfigError."""
    text = read_text(path, what)
    where = f"{what} {display_path(path)}" if what else display_path(path)
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = str(exc.problem)
        kind = "" if problem.startswith("duplicate key") else "invalid YAML: "
        raise ConfigError(f"{where}: {line}: {kind}{problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be configuration") from None
