"""The batch's files: patch files read with their text, hashes, outputs written atomically.

Used by the client for every file it writes, and by a worker that writes its own samples
(``--workers-write``). Thread: any (pure functions and one atomic write each).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from ..fileio import atomic_output
from ..patch import load_patch


def _read_patch(path) -> tuple:
    """(text, validated patch) of a patch file. Raises :class:`PatchError`."""
    patch = load_patch(path)
    return Path(path).read_text(encoding="utf-8"), patch


def source_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_number(x):
    """JSON has no NaN or infinity: those become null."""
    return float(x) if x is not None and math.isfinite(x) else None


def _write_bytes(path, data: bytes):
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)


def _write_text(path, text: str):
    _write_bytes(path, text.encode("utf-8"))
