"""The prepared per-note tables kept on disk and in memory (spikesynth/tablecache.py).

A hit must be bit-identical to a fresh measurement (the tables and what the measurement
leaves in the record), any changed input must miss, and a damaged file is measured again.
Every test points the cache at its own folder (``SPIKESYNTH_TABLE_CACHE``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rendering import render_in_blocks

from spikesynth import _cache, load_patch, models, tablecache
from spikesynth import params as P
from spikesynth.engine import MAX_VOICES
from spikesynth.patch import PATCH_DIR
from spikesynth.prepare import measure_note_tables, note_tables, tuning_frequencies
from spikesynth.tuning import load_tuning

ROOT = Path(__file__).resolve().parents[1]
SR = 48000.0


@pytest.fixture
def table_dir(tmp_path, monkeypatch):
    """A fresh cache folder for this test, an empty memory, counters from zero."""
    monkeypatch.setenv(_cache.TABLES_ENV, str(tmp_path / "tables"))
    tablecache.clear_memory()
    monkeypatch.setattr(tablecache, "STATS", tablecache.Stats())
    yield _cache.table_cache_dir()
    tablecache.clear_memory()


def fresh(name, n_slots=4):
    """(record, params) of a patch file, as prepare builds them."""
    patch = load_patch(PATCH_DIR / name)
    return models.get(patch["model"]).build(patch, n_slots), patch.param_vector()


def assert_same_record(a, b):
    """Every leaf array of two records equal bit for bit (nan included)."""
    pairs = zip(tablecache.record_leaves(a), tablecache.record_leaves(b), strict=True)
    for (path, x), (_, y) in pairs:
        assert x.dtype == y.dtype and x.shape == y.shape, path
        assert x.tobytes() == y.tobytes(), path


@pytest.mark.parametrize("name", ["default.yaml", "izhikevich_rs.yaml", "half_centre.yaml"])
def test_a_hit_is_bit_identical_to_a_fresh_measurement(table_dir, name):
    record, params = fresh(name)
    measured = note_tables(record, params, SR)  # a miss: measured and written
    assert (tablecache.STATS.misses, tablecache.STATS.writes) == (1, 1)
    assert len(list(table_dir.glob("*.npz"))) == 1 and not list(table_dir.glob("*.part"))

    tablecache.clear_memory()
    from_disk, params2 = fresh(name)
    tables = note_tables(from_disk, params2, SR)
    assert tablecache.STATS.disk_hits == 1 and tablecache.STATS.misses == 1
    assert tables.tobytes() == measured.tobytes()
    assert_same_record(from_disk, record)

    from_memory, params3 = fresh(name)
    assert note_tables(from_memory, params3, SR).tobytes() == measured.tobytes()
    assert tablecache.STATS.memory_hits == 1 and tablecache.STATS.misses == 1
    assert_same_record(from_memory, record)


def test_a_network_hit_restores_what_the_measurement_wrote_into_the_record(table_dir):
    record, params = fresh("half_centre.yaml")
    untouched, _ = fresh("half_centre.yaml")
    note_tables(record, params, SR)
    assert record.net.meta.tobytes() != untouched.net.meta.tobytes()  # the period measured
    tablecache.clear_memory()
    note_tables(untouched, params, SR)
    assert tablecache.STATS.disk_hits == 1
    assert_same_record(untouched, record)


def test_a_synth_from_cached_tables_renders_the_same_audio(table_dir, monkeypatch):
    patch = load_patch(PATCH_DIR / "half_centre.yaml")
    events = [(0, bytes([0x90, 60, 100])), (6000, bytes([0x80, 60, 0]))]
    note_tables(*fresh("half_centre.yaml", 2 * MAX_VOICES), SR)  # written (n_slots: Synth's)
    tablecache.clear_memory()
    cached, _ = render_in_blocks(patch, events, 9600, 256)
    assert tablecache.STATS.disk_hits == 1
    monkeypatch.setenv(_cache.TABLES_ENV, "off")
    measured, _ = render_in_blocks(patch, events, 9600, 256)
    assert tablecache.STATS.misses == 1  # the one measurement above
    assert np.abs(measured).max() > 1e-3  # it sounds
    assert cached.tobytes() == measured.tobytes()


def test_tables_written_by_another_process_are_read_back(table_dir):
    code = ("from spikesynth import load_patch, models; from spikesynth.patch import PATCH_DIR; "
            "from spikesynth.prepare import note_tables; "
            "p = load_patch(PATCH_DIR / 'default.yaml'); "
            "note_tables(models.get(p['model']).build(p, 4), p.param_vector(), 48000.0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list(table_dir.glob("*.npz"))) == 1
    record, params = fresh("default.yaml")
    tables = note_tables(record, params, SR)
    assert tablecache.STATS.disk_hits == 1 and tablecache.STATS.misses == 0
    again, _ = fresh("default.yaml")
    reference = measure_note_tables(again, note_quiet(params), SR, tuning_frequencies(None))
    assert tables.tobytes() == reference.tobytes()


def note_quiet(params):
    """The parameter vector as note_tables measures it (noise off)."""
    quiet = params.copy()
    quiet[P.P_NOISE] = 0.0
    return quiet


def test_any_changed_input_misses_and_noise_does_not_matter(table_dir):
    record, params = fresh("default.yaml")
    base = note_tables(record, params, SR)
    assert tablecache.STATS.misses == 1

    other_sr = note_tables(fresh("default.yaml")[0], params, 44100.0)
    tuned = params.copy()
    tuned[P.P_A4] = 442.0
    other_a4 = note_tables(fresh("default.yaml")[0], tuned, SR)
    tuning = load_tuning(ROOT / "tunings" / "19-edo.scl")
    other_tuning = note_tables(fresh("default.yaml")[0], params, SR, tuning)
    assert tablecache.STATS.misses == 4 and tablecache.STATS.memory_hits == 0
    for other in (other_sr, other_a4, other_tuning):
        assert other.tobytes() != base.tobytes()
    assert len(list(table_dir.glob("*.npz"))) == 4

    noisy = params.copy()
    noisy[P.P_NOISE] = 0.5  # measured with the noise off: the same tables
    assert note_tables(fresh("default.yaml")[0], noisy, SR).tobytes() == base.tobytes()
    assert tablecache.STATS.misses == 4 and tablecache.STATS.memory_hits == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "another key"])
def test_a_damaged_file_is_ignored_and_written_again(table_dir, damage):
    record, params = fresh("default.yaml")
    measured = note_tables(record, params, SR)
    (path,) = table_dir.glob("*.npz")
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a cache file" * 64)
    else:  # a whole, valid file of another input under this name
        tuned = params.copy()
        tuned[P.P_A4] = 441.0
        note_tables(fresh("default.yaml")[0], tuned, SR)
        (other,) = set(table_dir.glob("*.npz")) - {path}
        path.write_bytes(other.read_bytes())
    tablecache.clear_memory()
    before = tablecache.STATS.misses
    assert note_tables(fresh("default.yaml")[0], params, SR).tobytes() == measured.tobytes()
    assert tablecache.STATS.rejected == 1 and tablecache.STATS.misses == before + 1
    assert path.read_bytes() == good  # written again, whole
    tablecache.clear_memory()
    note_tables(fresh("default.yaml")[0], params, SR)
    assert tablecache.STATS.disk_hits == 1


def test_files_unused_for_a_month_are_removed_at_a_write(table_dir):
    note_tables(*fresh("default.yaml"), SR)
    (used,) = table_dir.glob("*.npz")
    stale = table_dir / ("0" * 32 + ".npz")
    stale.write_bytes(used.read_bytes())
    month = time.time() - 31 * 86400.0
    for path in (used, stale):
        os.utime(path, (month, month))
    tablecache.clear_memory()
    note_tables(*fresh("default.yaml"), SR)  # read: marked as in use
    assert tablecache.STATS.disk_hits == 1 and used.stat().st_mtime > month + 86400.0
    tuned = fresh("default.yaml")[1]
    tuned[P.P_A4] = 441.0
    note_tables(fresh("default.yaml")[0], tuned, SR)  # a write prunes
    assert used.exists() and not stale.exists()
    assert len(list(table_dir.glob("*.npz"))) == 2


def test_an_unwritable_folder_or_off_is_never_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(tablecache, "STATS", tablecache.Stats())
    record, params = fresh("default.yaml")
    reference = measure_note_tables(fresh("default.yaml")[0], note_quiet(params), SR,
                                    tuning_frequencies(None))
    monkeypatch.setenv(_cache.TABLES_ENV, str(blocker / "tables"))
    tablecache.clear_memory()
    assert note_tables(record, params, SR).tobytes() == reference.tobytes()
    assert tablecache.STATS.misses == 1 and tablecache.STATS.writes == 0

    monkeypatch.setenv(_cache.TABLES_ENV, "off")
    assert _cache.table_cache_dir() is None
    for _ in range(2):
        assert note_tables(fresh("default.yaml")[0], params, SR).tobytes() == reference.tobytes()
    assert tablecache.STATS.misses == 1 and tablecache.STATS.memory_hits == 0  # not consulted
    tablecache.clear_memory()


def test_the_folder_follows_the_numba_cache_and_the_source(monkeypatch, tmp_path):
    key = _cache.source_key()
    monkeypatch.delenv(_cache.TABLES_ENV, raising=False)
    users = _cache.CacheChoice(str(tmp_path / "mine"), "NUMBA_CACHE_DIR")
    assert _cache.table_cache_dir(users) == tmp_path / "mine" / "spikesynth-tables" / key
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    ours = _cache.CacheChoice(str(tmp_path / "xdg" / "spikesynth" / "numba" / key), "spikesynth")
    assert _cache.table_cache_dir(ours) == (tmp_path / "xdg" / "spikesynth" / "tables"
                                            / key).resolve()
