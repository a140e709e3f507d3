"""Where numba keeps the compiled kernels: one cache per source version, for every entry point.

Imported first by :mod:`spikesynth` (before any module defines a ``cache=True`` kernel), so
the console script ``spikesynth``, ``python -m spikesynth``, the test suite, the scripts and
any program that imports the package all use the same directory:

1. ``NUMBA_CACHE_DIR`` when the user set it (used as it is, never keyed);
2. otherwise ``$XDG_CACHE_HOME/spikesynth/numba/<hash>`` (``~/.cache/...`` when
   ``XDG_CACHE_HOME`` is unset), or, if that cannot be created, the same under the system's
   temporary directory (``spikesynth-numba-<user>``).

``<hash>`` digests every ``.py`` file of the installed package (names and contents). numba's
own cache check looks only at the file a kernel is defined in, so a kernel compiled against
an older version of a function it calls from another module would be reused; a new
directory per source version rules that out. A per-user directory (rather than one inside
the package) works for read-only installs and editable checkouts alike. Old versions'
directories are not removed: ``spikesynth cache-dir`` shows the current one, and the
folders beside it may be deleted at any time.

Beside the kernels, :mod:`spikesynth.tablecache` keeps the prepared per-note tables (the
calibration and key-loudness renders of :func:`spikesynth.prepare.note_tables`), keyed by the
same source hash (:func:`table_cache_dir`):

1. ``SPIKESYNTH_TABLE_CACHE=off`` (or ``0``, ``no``, ``false``): no table cache at all (every
   prepare measures again); any other value of ``SPIKESYNTH_TABLE_CACHE``: that directory,
   as ``<dir>/<hash>``;
2. with a user's ``NUMBA_CACHE_DIR``: ``$NUMBA_CACHE_DIR/spikesynth-tables/<hash>`` (the user
   chose where caches go; the subfolder keeps our files apart from numba's, the hash keeps
   old versions' tables from being reused);
3. otherwise ``$XDG_CACHE_HOME/spikesynth/tables/<hash>`` beside the kernels (or
   ``spikesynth-tables-<user>/<hash>`` under the temporary directory).

The choice is written to ``os.environ["NUMBA_CACHE_DIR"]`` (read by numba when it is first
imported, and re-read by its compiler) and to ``numba.config.CACHE_DIR`` when numba was
imported already. ``SPIKESYNTH_NUMBA_CACHE_DIR`` records that the value is ours, so a child
process that inherits it (possibly running other sources) chooses again rather than taking
it for the user's.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

PACKAGE_DIR = Path(__file__).resolve().parent
_MARK = "SPIKESYNTH_NUMBA_CACHE_DIR"
TABLES_ENV = "SPIKESYNTH_TABLE_CACHE"
_OFF = ("off", "0", "no", "false")


class CacheChoice(NamedTuple):
    """The numba cache directory in use, and who chose it."""

    path: str
    """Absolute directory numba writes its cache files under."""
    chosen_by: str
    """``"NUMBA_CACHE_DIR"`` (the user's environment) or ``"spikesynth"``."""


def source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """Digest of the package's ``.py`` files (relative names and bytes): 16 hex digits.

    Thread: any (reads files; a few milliseconds).
    """
    digest = hashlib.sha1()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def default_cache_dir(key: str, kind: str = "numba") -> Path:
    """The per-user cache directory of ``kind`` (``numba``, ``tables``) for source version
    ``key`` (created if missing)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "spikesynth" / kind / key
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        user = os.environ.get("USER") or str(os.getuid() if hasattr(os, "getuid") else "user")
        path = Path(tempfile.gettempdir()) / f"spikesynth-{kind}-{user}" / key
        path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


_SOURCE_KEY: list = []  # the source hash, computed once


def source_key() -> str:
    """:func:`source_hash` of the installed package, computed once per process."""
    if not _SOURCE_KEY:
        _SOURCE_KEY.append(source_hash())
    return _SOURCE_KEY[0]


def configure() -> CacheChoice:
    """Choose the cache directory and tell numba. Thread: main (at package import).

    Returns
    -------
    CacheChoice
    """
    user = os.environ.get("NUMBA_CACHE_DIR", "")
    if user and user != os.environ.get(_MARK):
        choice = CacheChoice(os.path.abspath(user), "NUMBA_CACHE_DIR")
    else:
        choice = CacheChoice(str(default_cache_dir(source_key())), "spikesynth")
        os.environ[_MARK] = choice.path
    os.environ["NUMBA_CACHE_DIR"] = choice.path
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba was imported first: its config has read the old value
        config.CACHE_DIR = choice.path
    return choice


CACHE = configure()


def table_cache_dir(choice: CacheChoice = CACHE) -> Path | None:
    """Where the prepared per-note tables are kept (see the module docstring), or None when
    ``SPIKESYNTH_TABLE_CACHE`` turns the cache off. Read at each call, so a program may
    change the setting; the directory may not exist yet (its writer creates it).

    Thread: main (may create a directory).
    """
    setting = os.environ.get(TABLES_ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return Path(os.path.abspath(os.path.expanduser(setting))) / source_key()
    if choice.chosen_by == "NUMBA_CACHE_DIR":
        return Path(choice.path) / "spikesynth-tables" / source_key()
    try:
        return default_cache_dir(source_key(), "tables")
    except OSError:
        return None
