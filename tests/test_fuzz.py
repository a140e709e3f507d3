"""Fuzzing in CI: mutated MIDI files and patches never give a traceback, a hang or unbounded
memory; what `check` accepts renders. Seeded (reproducible) and bounded to a few seconds each;
``benchmarks/fuzz_inputs.py`` runs thousands of the same cases."""

from __future__ import annotations

import random

import numpy as np
import pytest
from fuzz_cases import (
    bundled_texts,
    check_midi,
    check_patch,
    mutate_midi,
    mutate_patch,
    yaml_scalar,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikesynth.engine import Synth
from spikesynth.patch import SCHEMA, patch_from_text

CASE_SECONDS = 10.0  # generous (a shared, busy CI machine): a case takes milliseconds
CASE_BYTES = 64 * 2**20
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def test_mutated_midi_files(tmp_path):
    rng = random.Random(8)
    accepted = 0
    for case in range(300):
        out = check_midi(mutate_midi(rng), tmp_path / f"{case}.mid")
        assert out.seconds < CASE_SECONDS and out.peak_bytes < CASE_BYTES, (case, out)
        accepted += out.accepted
    assert 0 < accepted < 300  # both paths exercised


@FUZZ
@given(body=st.binary(max_size=200), division=st.integers(0, 65535),
       fmt=st.integers(0, 3), ntracks=st.integers(0, 3))
def test_random_midi_bytes(tmp_path, body, division, fmt, ntracks):
    data = (b"MThd\x00\x00\x00\x06" + fmt.to_bytes(2, "big") + ntracks.to_bytes(2, "big")
            + division.to_bytes(2, "big") + b"MTrk" + len(body).to_bytes(4, "big") + body)
    out = check_midi(data, tmp_path / "h.mid")
    assert out.seconds < CASE_SECONDS and out.peak_bytes < CASE_BYTES


def test_mutated_patches():
    rng = random.Random(9)
    texts = bundled_texts()
    for text in texts:  # warm-up: first-use imports and compilation are not the case's time
        assert check_patch(text).accepted
    accepted = 0
    for case in range(300):
        out = check_patch(mutate_patch(rng, texts))
        assert out.seconds < CASE_SECONDS and out.peak_bytes < CASE_BYTES, (case, out)
        accepted += out.accepted
    assert 0 < accepted < 300


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**40), 10**40),
    st.booleans(), st.none(), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.sampled_from("ab"), st.integers(),
                                                         max_size=2))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(sorted(SCHEMA)), _VALUES, min_size=1,
                              max_size=8))
def test_patches_with_hostile_values(values):
    lines, sections = [], {}
    for key, value in values.items():
        if "." in key:
            section, sub = key.split(".", 1)
            sections.setdefault(section, []).append(f"  {sub}: {yaml_scalar(value)}")
        else:
            lines.append(f"{key}: {yaml_scalar(value)}")
    for section, items in sections.items():
        lines += [f"{section}:", *items]
    out = check_patch("\n".join(lines) + "\n")
    assert out.seconds < CASE_SECONDS and out.peak_bytes < CASE_BYTES


def test_accepted_mutations_render():
    """A patch `check` accepts always renders: finite output under the ceiling."""
    rng = random.Random(10)
    texts = bundled_texts()
    rendered = 0
    for _ in range(400):
        text = mutate_patch(rng, texts)
        if not check_patch(text).accepted:
            continue
        patch = patch_from_text(text, "fuzz.yaml")
        synth = Synth(patch, samplerate=24000, max_block=512)
        out = synth.process(512, [(0, bytes([0x90, 60, 100])), (256, bytes([0xB0, 1, 127]))])
        out = np.vstack([out, synth.process(512, [(100, bytes([0x80, 60, 0]))])])
        assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0
        rendered += 1
        if rendered == 8:
            break
    assert rendered == 8


@pytest.mark.parametrize("seed", range(3))
def test_cli_render_of_mutated_midi_files(tmp_path, capsys, seed):
    """End to end through `render`: exit 0 or 1, one message, never a traceback."""
    from spikesynth import cli

    rng = random.Random(100 + seed)
    path = tmp_path / "m.mid"
    path.write_bytes(mutate_midi(rng))
    code = cli.main(["render", "--midi", str(path), "-o", str(tmp_path / "m.wav"), "-q",
                     "--max-seconds", "3", "--samplerate", "8000"])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err
    if code == 1:
        assert err.count("spikesynth: error:") == 1
