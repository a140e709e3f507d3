"""Atomic output files: write beside the target, then rename, so nothing is ever half-written."""

from __future__ import annotations

import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _host() -> str:
    """This machine's name as it goes into a temporary file's name (no dots)."""
    return socket.gethostname().replace(".", "_") or "localhost"


def _writer(token: str):
    """``PID-HOST`` (or an older ``PID``) → the writer's pid if it ran on this machine."""
    pid_text, _, host = token.partition("-")
    if not pid_text.isdigit() or (host and host != _host()):
        return None  # named otherwise, or written from another machine (a shared folder)
    return int(pid_text)


def remove_stale_parts(path) -> list[Path]:
    """Remove the temporary files of earlier writers of ``path`` that died. Thread: main.

    A temporary file is named ``.NAME.PID-HOST.RANDOM.part`` after its writer's process id
    and machine; one whose writer no longer exists (killed with SIGKILL, or the machine
    lost power) is removed. Files of live writers, of writers on other machines (a folder
    shared by a cluster's workers: their process ids mean nothing here), and files named
    otherwise are left alone. Returns the removed paths.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    removed = []
    try:
        candidates = [p for p in folder.iterdir()
                      if p.name.startswith(prefix) and p.name.endswith(".part")]
    except OSError:
        return removed
    for part in candidates:
        pid = _writer(part.name[len(prefix):].split(".", 1)[0])
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        try:
            part.unlink()
            removed.append(part)
        except OSError:
            pass
    return removed


@contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    Thread: main. The temporary file gets the permissions a new file would (umask), is
    fsynced, then renamed over ``path`` with ``os.replace``. On any error or interruption
    (``KeyboardInterrupt`` included) it is removed and ``path`` is untouched. Temporary
    files that dead earlier writers left beside ``path`` are removed first
    (:func:`remove_stale_parts`).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-{_host()}.", suffix=".part",
                               dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would otherwise stick to the result
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
