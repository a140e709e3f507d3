"""The package chooses numba's cache directory (spikesynth/_cache.py), one for every entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "spikesynth"


def clean_env(tmp_path: Path, **extra) -> dict:
    """The test process's environment without any cache choice, XDG cache under tmp_path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "SPIKESYNTH_NUMBA_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def run(args, env, cwd=ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def entry_points():
    assert CONSOLE_SCRIPT.exists(), f"no console script at {CONSOLE_SCRIPT} (pip install -e .)"
    return [[str(CONSOLE_SCRIPT)], [sys.executable, "-m", "spikesynth"]]


def test_every_entry_point_chooses_the_same_per_user_directory(tmp_path):
    env = clean_env(tmp_path)
    chosen = {run([*cmd, "cache-dir"], env).stdout.strip() for cmd in entry_points()}
    code = ("import spikesynth._cache as c, os; print(c.CACHE.path); "
            "print(os.environ['NUMBA_CACHE_DIR'])")
    imported = run([sys.executable, "-c", code], env).stdout.split()
    chosen |= set(imported)
    assert len(chosen) == 1, chosen
    path = Path(chosen.pop())
    assert path.parent == (tmp_path / "xdg" / "spikesynth" / "numba").resolve()
    assert path.is_dir() and len(path.name) == 16


def test_a_users_numba_cache_dir_is_respected(tmp_path):
    user = tmp_path / "mine"
    env = clean_env(tmp_path, NUMBA_CACHE_DIR=str(user))
    for cmd in entry_points():
        result = run([*cmd, "cache-dir", "-v"], env)
        assert result.stdout.strip() == str(user)
        assert "NUMBA_CACHE_DIR" in result.stderr
        assert f"prepared tables: {user / 'spikesynth-tables'}/" in result.stderr
    # And numba uses it: a cached kernel of the package is written there.
    code = ("import spikesynth, numba; from spikesynth.events import EventRing; EventRing(4); "
            "print(numba.config.CACHE_DIR)")
    assert run([sys.executable, "-c", code], env).stdout.strip() == str(user)
    assert list(user.rglob("*ring_push*.nbi")), sorted(user.rglob("*"))


def test_numba_imported_before_the_package_still_uses_the_chosen_directory(tmp_path):
    env = clean_env(tmp_path)
    code = ("import numba, numba.core.config as cfg; import spikesynth; "
            "from spikesynth._cache import CACHE; from spikesynth.events import EventRing; "
            "EventRing(4); print(CACHE.path); print(cfg.CACHE_DIR)")
    chosen, seen = run([sys.executable, "-c", code], env).stdout.split()
    assert chosen == seen and Path(chosen).parent.parent.name == "spikesynth"
    assert list(Path(chosen).rglob("*ring_push*.nbi")), "the kernel was cached elsewhere"


def test_an_inherited_choice_is_made_again_and_a_changed_source_gets_a_new_directory(tmp_path):
    # A copy of the package: editing one file must change the directory.
    copy = tmp_path / "pkg"
    shutil.copytree(ROOT / "spikesynth", copy / "spikesynth",
                    ignore=shutil.ignore_patterns("__pycache__"))
    stale = str(tmp_path / "stale")
    # NUMBA_CACHE_DIR inherited from a spikesynth parent (the marker says it was ours).
    env = clean_env(tmp_path, PYTHONPATH=str(copy), NUMBA_CACHE_DIR=stale,
                    SPIKESYNTH_NUMBA_CACHE_DIR=stale)
    code = "import spikesynth, spikesynth._cache as c; print(c.__file__); print(c.CACHE.path)"
    where, before = run([sys.executable, "-c", code], env, cwd=tmp_path).stdout.split()
    assert Path(where).is_relative_to(copy) and before != stale
    with open(copy / "spikesynth" / "dsp" / "__init__.py", "a") as f:
        f.write("\n# changed\n")
    after = run([sys.executable, "-c", code], env, cwd=tmp_path).stdout.split()[1]
    assert after != before and Path(after).parent == Path(before).parent


def test_python_m_spikesynth_checks_a_patch(tmp_path):
    env = clean_env(tmp_path)
    result = run([sys.executable, "-m", "spikesynth", "check", "patches/default.yaml"], env)
    assert result.stdout.startswith("patches/default.yaml: ok")


@pytest.mark.parametrize("bad", ["", "x"])
def test_python_m_spikesynth_reports_usage_errors(tmp_path, bad):
    env = clean_env(tmp_path)
    args = [sys.executable, "-m", "spikesynth"] + ([bad] if bad else [])
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2


def _threads_after(code: str, env: dict) -> str:
    """``code``'s output, then the process's thread count (Linux's /proc)."""
    probe = code + "; print(open('/proc/self/status').read().split('Threads:')[1].split()[0])"
    return run([sys.executable, "-c", probe], env).stdout.split()


def test_openblas_keeps_one_thread_unless_the_user_chose(tmp_path):
    # OpenBLAS's start-up workers cost a warm render about 0.3 s of CPU (spikesynth/__init__.py).
    chosen = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    env = {k: v for k, v in clean_env(tmp_path).items() if k not in chosen}
    if len(os.sched_getaffinity(0)) > 1:  # what the package avoids: a thread per core
        assert int(_threads_after("import numpy", env)[0]) > 1
    value, threads = _threads_after(
        "import os, spikesynth, numpy; print(os.environ['OPENBLAS_NUM_THREADS'])", env)
    assert (value, threads) == ("1", "1")
    value, _ = _threads_after("import os, spikesynth; print(os.environ['OPENBLAS_NUM_THREADS'])",
                              {**env, "OPENBLAS_NUM_THREADS": "2"})
    assert value == "2"
    value, _ = _threads_after("import os, spikesynth; "
                              "print(os.environ.get('OPENBLAS_NUM_THREADS', 'unset'))",
                              {**env, "OMP_NUM_THREADS": "2"})
    assert value == "unset"  # the user chose through OpenMP's variable
