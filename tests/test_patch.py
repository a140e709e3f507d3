"""Patch loading: defaults, and bad patches that name file, line, key path and expectation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spikesynth.patch import SCHEMA, PatchError, load_patch, patch_from_text


def test_empty_patch_gets_every_default():
    p = patch_from_text("{}")
    for key, spec in SCHEMA.items():
        assert p[key] == spec.default


@pytest.mark.parametrize(
    "text, line, key, words",
    [
        ("name: x\nspring:\n  damping: 1.5\n", 3, "spring.damping", "from 0.02 to 0.95"),
        ("voices: 'many'\n", 1, "voices", "whole number"),
        ("voices: 2.5\n", 1, "voices", "whole number"),
        ("gain_db: .nan\n", 1, "gain_db", "number"),
        ("name: x\nspringg:\n  damping: 0.5\n", 2, "springg",
         "unknown key (did you mean 'spring'?)"),
        ("spring:\n  dampin: 0.5\n", 2, "spring.dampin", "unknown key (did you mean 'damping'?)"),
        ("voicez: 4\n", 1, "voicez", "unknown key (did you mean 'voices'?)"),
        ("zzz: 4\n", 1, "zzz", "unknown key (known: "),
        ("spring: 3\n", 1, "spring", "mapping"),
        ("membrane:\n  threshold_low: 2.0\n", 2, "membrane.threshold_low", "below"),
        ("controllers:\n  - {cc: 200, param: softness}\n", 2, "controllers[0].cc", "0 to 127"),
        ("controllers:\n  - {cc: 10, param: nope}\n", 2, "controllers[0].param", "controllable"),
        ("controllers:\n  - cc: 10\n    param: softness\n    max: 7\n", 4,
         "controllers[0].max", "from 0 to 1"),
        ("model: banana\n", 1, "model", "one of"),
        ("name: a\nname: b\n", 2, "name", "duplicate"),
        ("name: [unclosed\n", 2, None, "broken YAML"),
        ("- just\n- a list\n", None, None, "mapping"),
    ],
)
def test_bad_patch_message(tmp_path, text, line, key, words):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PatchError) as info:
        load_patch(f)
    e = info.value
    msg = str(e)
    assert str(f) in msg
    assert e.line == line
    if line:
        assert f":{line}:" in msg
    if key:
        assert e.key == key and key in msg
    assert words in msg


def test_missing_file(tmp_path):
    with pytest.raises(PatchError, match="no such patch file"):
        load_patch(tmp_path / "nope.yaml")


def test_check_command_exit_codes_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spring:\n  frequency_hz: -4\n")
    run = subprocess.run([sys.executable, "-m", "spikesynth.cli", "check", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert f"{bad}:2: spring.frequency_hz: expected a number from 5 to 20000 Hz, got -4" \
        in run.stderr
    run = subprocess.run([sys.executable, "-m", "spikesynth.cli", "check",
                          "patches/default.yaml"], capture_output=True, text=True)
    assert run.returncode == 0 and "ok" in run.stdout


@pytest.mark.parametrize("text, words", [
    ("controllers:\n  - {cc: 10, param: [1]}\n", "controllable"),
    ("controllers:\n  - {source: [1], param: softness}\n", "aftertouch"),
    ("a: &a [*a]\n", "alias"),
])
def test_odd_yaml_is_a_patch_error_not_a_crash(tmp_path, text, words):
    f = tmp_path / "odd.yaml"
    f.write_text(text)
    with pytest.raises(PatchError, match=words):
        load_patch(f)
