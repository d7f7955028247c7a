"""alpmd's own configuration file (``<root>/etc/alpmd.conf``), for what pacman.conf cannot say.

pacman warns about keys it does not know, so alpmd's settings live apart::

    # /etc/alpmd.conf
    [options]
    Backend = sqlite     # the local database store of a new root: files (default) or sqlite
    RepositoryTree = /srv/repo   # the alpm-repo tree org.alpm.Repository1 serves (default: none)

A missing file means the defaults. ``#`` starts a comment; keys are matched
as written (like pacman.conf's); an unknown key or value is refused with
``CONFIG_INVALID`` naming the line, rather than silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from alpmd.engine.db.stores import Store
from alpmd.engine.errors import AlpmError, ErrorCode

__all__ = ["AlpmdConfig", "CONFIG_NAME", "load_alpmd_config", "parse_alpmd_config"]

#: Where the file lives, relative to the root.
CONFIG_NAME = "etc/alpmd.conf"


@dataclass(repr=False)
class AlpmdConfig:
    """The settings; every field has the default a missing file gives."""

    #: The store a new root's local database is created in.
    backend: Store = Store.FILES
    #: The repository tree (its ``alpm-repo.conf`` directory, an absolute path on the
    #: host) the daemon's ``org.alpm.Repository1`` serves; ``None``: it serves none.
    repository_tree: str | None = None


def parse_alpmd_config(text: str, path: str = "alpmd.conf") -> AlpmdConfig:
    """Parse the file's text; ``path`` only names it in errors."""
    config = AlpmdConfig()
    section = "options"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue

        def invalid(why: str, n: int = number) -> AlpmError:
            return AlpmError(ErrorCode.CONFIG_INVALID, f"config file {path}, line {n}: {why}",
                             path=path, line=n)

        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section != "options":
                raise invalid(f"unknown section '{section}'")
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or not value:
            raise invalid(f"directive '{key}' needs a value")
        if key == "Backend":
            try:
                config.backend = Store(value)
            except ValueError:
                choices = ", ".join(s.value for s in Store)
                raise invalid(f"unknown backend '{value}' (one of {choices})") from None
        elif key == "RepositoryTree":
            if not value.startswith("/") or "\0" in value:
                raise invalid(f"RepositoryTree must be an absolute path, not '{value}'")
            config.repository_tree = os.path.normpath(value)
        else:
            raise invalid(f"unknown directive '{key}'")
    return config


def load_alpmd_config(path: str) -> AlpmdConfig:
    """Read ``path``; the defaults when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return AlpmdConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise AlpmError(ErrorCode.CONFIG_INVALID, f"could not read config file {path}: {exc}",
                        path=path) from exc
    return parse_alpmd_config(text, path)
