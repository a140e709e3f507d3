"""Scala tunings (spikesynth/tuning.py) against tuning-library and against closed forms."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import tuning_library as tl

from spikesynth.tuning import N_NOTES, TuningFileError, load_tuning

TUNINGS = Path(__file__).resolve().parents[1] / "tunings"
C4 = 440.0 * 2 ** (-9 / 12)  # tuning-library's standard mapping: degree 0 on note 60 here
NOTES = np.arange(N_NOTES)

# (scale, keyboard map or None)
BUNDLED = [
    ("19-edo.scl", None),
    ("31-edo.scl", None),
    ("ji-5-limit-12.scl", None),
    ("partch-43.scl", "partch-43.kbm"),
    ("bohlen-pierce.scl", "bohlen-pierce.kbm"),
    ("carlos-alpha.scl", None),
]


def tuning_library_frequencies(scl, kbm):
    scale = tl.read_scl_file(str(scl))
    tuning = tl.Tuning(scale) if kbm is None else tl.Tuning(scale, tl.read_kbm_file(str(kbm)))
    return np.array([tuning.frequency_for_midi_note(int(n)) for n in NOTES])


@pytest.mark.parametrize("scl, kbm", BUNDLED, ids=[s for s, _ in BUNDLED])
def test_every_note_matches_tuning_library(scl, kbm):
    kbm_path = TUNINGS / kbm if kbm else None
    tuning = load_tuning(TUNINGS / scl, kbm_path)
    assert tuning.frequencies.shape == (N_NOTES,) and tuning.frequencies.dtype == np.float64
    assert tuning.mapped.all()
    np.testing.assert_array_equal(tuning.frequencies,
                                  tuning_library_frequencies(TUNINGS / scl, kbm_path))
    assert not tuning.frequencies.flags.writeable


def just(ratios, root_hz):
    """Frequencies of a just scale (degree 0 on note 60), from its ratios with fractions."""
    degrees = [Fraction(1)] + [Fraction(r) for r in ratios[:-1]]
    period = Fraction(ratios[-1])
    out = []
    for n in NOTES:
        k, d = divmod(int(n) - 60, len(degrees))
        out.append(root_hz * float(period) ** k * float(degrees[d]))
    return np.array(out)


JI_5 = ["16/15", "9/8", "6/5", "5/4", "4/3", "45/32", "3/2", "8/5", "5/3", "9/5", "15/8", "2/1"]
PARTCH = ("81/80 33/32 21/20 16/15 12/11 11/10 10/9 9/8 8/7 7/6 32/27 6/5 11/9 5/4 14/11 9/7 "
          "21/16 4/3 27/20 11/8 7/5 10/7 16/11 40/27 3/2 32/21 14/9 11/7 8/5 18/11 5/3 27/16 "
          "12/7 7/4 16/9 9/5 20/11 11/6 15/8 40/21 64/33 160/81 2/1").split()


@pytest.mark.parametrize("scl, kbm, expected", [
    ("19-edo.scl", None, C4 * 2 ** ((NOTES - 60) / 19)),
    ("31-edo.scl", None, C4 * 2 ** ((NOTES - 60) / 31)),
    ("ji-5-limit-12.scl", None, just(JI_5, C4)),
    ("partch-43.scl", "partch-43.kbm", just(PARTCH, 392.0)),
    ("bohlen-pierce.scl", "bohlen-pierce.kbm", 261.625565 * 3 ** ((NOTES - 60) / 13)),
    ("carlos-alpha.scl", None, C4 * 2 ** ((NOTES - 60) * 77.965 / 1200)),
], ids=["19-edo", "31-edo", "ji-5", "partch", "bohlen-pierce", "carlos-alpha"])
def test_bundled_scales_match_their_theory(scl, kbm, expected):
    """Independent of tuning-library: each scale's closed form, within 0.001 cent."""
    tuning = load_tuning(TUNINGS / scl, TUNINGS / kbm if kbm else None)
    cents = 1200 * np.log2(tuning.frequencies / expected)
    assert np.abs(cents).max() < 1e-3


def test_default_is_12_tone_equal_temperament_at_a440():
    tuning = load_tuning()
    np.testing.assert_allclose(tuning.frequencies, 440.0 * 2 ** ((NOTES - 69) / 12), rtol=1e-12)
    assert tuning.scale_size == 12 and tuning.period_cents == pytest.approx(1200.0)
    assert tuning.scl is None and tuning.kbm is None and tuning.mapped.all()


def test_non_octave_period_and_record_fields():
    tuning = load_tuning(TUNINGS / "bohlen-pierce.scl", TUNINGS / "bohlen-pierce.kbm")
    assert tuning.scale_size == 13
    assert tuning.period_cents == pytest.approx(1200 * math.log2(3))
    assert tuning.frequencies[60 + 13] == pytest.approx(3 * tuning.frequencies[60], rel=1e-12)
    assert tuning.scl.endswith("bohlen-pierce.scl") and tuning.kbm.endswith("bohlen-pierce.kbm")


def test_unmapped_keys_are_flagged(tmp_path):
    kbm = tmp_path / "gaps.kbm"
    # A 4-key pattern over a 12-tone scale: keys 1 and 3 of each pattern are unmapped.
    kbm.write_text("! gaps\n4\n0\n127\n60\n60\n261.625565\n2\n0\nx\n1\nx\n")
    tuning = load_tuning(None, kbm)
    assert tuning.mapped[[60, 62, 64, 66]].all() and not tuning.mapped[[61, 63, 65, 67]].any()
    # Mapped keys: degree 0, 1, then the pattern repeats a "formal octave" (degree 2) higher.
    assert tuning.frequencies[62] == pytest.approx(261.625565 * 2 ** (1 / 12), rel=1e-9)
    assert tuning.frequencies[64] == pytest.approx(261.625565 * 2 ** (2 / 12), rel=1e-9)


@pytest.mark.parametrize("name, text, line, what", [
    ("tone.scl", "! t\nbad tone\n 3\n!\n100.0\nfoo\n2/1\n", 6, "invalid tone"),
    ("count.scl", "! c\nshort\n 3\n!\n100.0\n2/1\n", None, "fewer notes than count"),
    ("ratio.scl", "! r\nzero\n 1\n!\n3/0\n", 5, "invalid tone"),
])
def test_bad_scale_files_give_file_line_and_reason(tmp_path, name, text, line, what):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TuningFileError) as caught:
        load_tuning(path)
    error = caught.value
    assert error.file == str(path) and error.line == line
    prefix = f"{path}:{line}: " if line else f"{path}: "
    assert str(error).startswith(prefix) and "\n" not in str(error)
    if what:
        assert what in str(error).lower()


def test_bad_keyboard_maps_and_missing_files(tmp_path):
    bad = tmp_path / "bad.kbm"
    bad.write_text("! k\n12\n0\n127\n60\n69\n440.0\nzz\n")
    with pytest.raises(TuningFileError, match=rf"^{bad}:8: ") as caught:
        load_tuning(None, bad)
    assert caught.value.line == 8
    # The reference key (69) falls on an unmapped key: the map does not fit the scale.
    unfit = tmp_path / "unfit.kbm"
    unfit.write_text("! k\n4\n0\n127\n60\n69\n440.0\n2\n0\nx\n1\n2\n")
    with pytest.raises(TuningFileError, match=rf"^{unfit}: .*unmapped"):
        load_tuning(TUNINGS / "ji-5-limit-12.scl", unfit)
    with pytest.raises(TuningFileError, match=r"nope\.scl: no such scale \(\.scl\) file$"):
        load_tuning(tmp_path / "nope.scl")
    with pytest.raises(TuningFileError, match=r"is a directory"):
        load_tuning(None, tmp_path)
