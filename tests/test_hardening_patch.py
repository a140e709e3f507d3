"""Bounded patch input: size, nesting and alias-expansion limits, empty files, every key ranged."""

from __future__ import annotations

import math
import time
import tracemalloc

import pytest

from spikesynth import patch as patch_module
from spikesynth.patch import (
    MAX_NESTING,
    MAX_PATCH_BYTES,
    SCHEMA,
    PatchError,
    load_patch,
    patch_from_text,
)


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"name: *a{levels - 1}")
    return "\n".join(lines)


@pytest.mark.parametrize("levels", [6, 9])
def test_billion_laughs_rejected_fast_and_small(levels):
    text = billion_laughs(levels)
    assert len(text) < 500
    tracemalloc.start()
    t0 = time.process_time()
    with pytest.raises(PatchError, match="aliases are expanded"):
        patch_from_text(text, "laughs.yaml")
    cpu = time.process_time() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 9**levels values if expanded (531,441 / 387 million); the bounded parse touches each
    # node once. Coarse bounds only (CI machines vary): a full expansion takes seconds and GB.
    assert peak < 5_000_000, peak
    assert cpu < 1.0, cpu


def test_aliases_within_the_budget_still_work():
    p = patch_from_text("x: &g {tau_ms: 5.0}\nmembrane: *g\n".replace("x: ", "lif: "))
    assert p["membrane.tau_ms"] == 5.0 and p["lif.tau_ms"] == 5.0


@pytest.mark.parametrize("text", ["", "   \n\t\n", "# only a comment\n", "---\n"])
def test_empty_files_are_errors(text, tmp_path):
    with pytest.raises(PatchError, match="file is empty: expected a patch mapping"):
        patch_from_text(text, "e.yaml")
    f = tmp_path / "e.yaml"
    f.write_text(text)
    with pytest.raises(PatchError, match=r"e\.yaml: file is empty"):
        load_patch(f)


def test_deep_nesting_rejected_with_its_line():
    text = "name: x\ndescription: " + "[" * (MAX_NESTING + 5) + "]" * (MAX_NESTING + 5)
    with pytest.raises(PatchError, match=f"nested more than {MAX_NESTING}") as e:
        patch_from_text(text, "deep.yaml")
    assert e.value.line == 2
    # 100,000 levels: no RecursionError, no traceback
    with pytest.raises(PatchError, match="nest"):
        patch_from_text("[" * 100_000, "deeper.yaml")


def test_recursive_alias_and_huge_file(tmp_path):
    with pytest.raises(PatchError, match="refers to itself"):
        patch_from_text("name: &a [*a]", "r.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (MAX_PATCH_BYTES + 10) + "\nname: big\n")
    with pytest.raises(PatchError, match="too large"):
        load_patch(big)


@pytest.mark.parametrize("text,match", [
    ("voices: " + "9" * 400, "voices: expected a whole number from 1 to 256"),
    ("gain_db: .nan", "gain_db: expected a number"),
    ("gain_db: -.inf", "gain_db: expected a number"),
    ("a4: 1e400", "a4: expected a number"),
    ("gain_db: " + "9" * 5000, "broken YAML"),
    ("name: [1, 2]", "name: expected a string"),
    ("model: [spiking]", "model: expected one of"),
    ("name: " + "x" * 20000, "at most"),
    ("controllers: [" + ", ".join(["{cc: 1, param: gain_db}"] * 300) + "]", "at most 256"),
])
def test_hostile_values_give_one_line(text, match):
    with pytest.raises(PatchError, match=match) as e:
        patch_from_text(text, "h.yaml")
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_every_numeric_key_has_a_finite_range():
    for key, spec in SCHEMA.items():
        if spec.kind in ("float", "int"):
            assert spec.lo is not None and spec.hi is not None, key
            assert math.isfinite(spec.lo) and math.isfinite(spec.hi) and spec.lo <= spec.hi, key
        else:
            assert spec.kind in ("str", "choice"), key
    assert patch_module.MAX_STRING > 0


def test_bundled_patches_fit_the_bounds():
    for path in sorted(patch_module.PATCH_DIR.glob("*.yaml")):
        load_patch(path)
