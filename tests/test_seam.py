"""The voice-model seam: a model added from outside, compiled only when used, no copies
specialised on constants, parameters apart from state, program change as an engine event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0
from rendering import render_in_blocks

from spikesynth import Synth, load_patch
from spikesynth.engine import ParamChange
from spikesynth.models import get
from spikesynth.models.spiking import P_SPRING_HZ

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "patches"
SR = 48000


SINE = r"""
import json, numpy as np
import sine_model  # registers the "sine" voice model: no engine file is edited
from audio_analysis import estimate_f0
from spikesynth import Synth
from spikesynth.models import names
from spikesynth.patch import PatchError, patch_from_text
patch = patch_from_text("model: sine\nsine: {level: 0.5}\nvoices: 4\n")
out = Synth(patch, 48000, 512).process(48000, [(0, bytes([0x90, 69, 100]))])
steady = out[12000:, 0].astype(np.float64)
try:
    patch_from_text("model: sine\nsine: {level: 9}\n")
    error = ""
except PatchError as e:
    error = str(e)
print(json.dumps({"names": names(), "f0": estimate_f0(steady, 48000, 440.0),
                  "rms": float(np.sqrt(np.mean(steady ** 2))), "error": error}))
"""


def test_a_model_added_without_editing_the_engine_plays_in_tune(tmp_path):
    # Its own cache: the cache index of the engine's functions would name the test's module.
    found = _probe(SINE, tmp_path)
    assert "sine" in found["names"]
    assert abs(cents(found["f0"], 440.0)) < 1.0
    assert 0.01 < found["rms"] < 0.5  # the engine's level tables apply to the new model too
    assert "sine.level" in found["error"] and "from 0 to 2" in found["error"]


def _probe(code: str, cache_dir) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"), NUMBA_CACHE_DIR=str(cache_dir))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


PROBE = r"""
import json, sys, numba
from numba.core.registry import CPUDispatcher
import spikesynth
from spikesynth import Synth, load_patch
synth = Synth(load_patch(sys.argv[1] if len(sys.argv) > 1 else None), 48000, 512)
synth.process(4800, [(0, bytes([0x90, 60, 100])), (100, bytes([0xB0, 74, 20])),
                     (200, bytes([0xD0, 30])), (300, bytes([0xE0, 0, 70])),
                     (400, bytes([0xB0, 1, 90])), (2000, bytes([0x80, 60, 0]))])
compiled, literal = {}, []
for name, module in list(sys.modules.items()):
    if not name.startswith("spikesynth"):
        continue
    for attr, value in vars(module).items():
        if (isinstance(value, CPUDispatcher) and value.signatures
                and value.py_func.__module__ == name):
            compiled[f"{name}.{attr}"] = len(value.signatures)
            literal += [f"{name}.{attr}{s}" for s in value.signatures if "Literal" in str(s)]
print(json.dumps({"compiled": compiled, "literal": literal}))
"""


def test_a_render_compiles_only_its_own_model_and_no_copies_for_constants(tmp_path):
    """A first render (empty cache) compiles the spiking model, never the others."""
    found = _probe(PROBE, tmp_path)
    compiled = found["compiled"]
    cached = [p.name for p in tmp_path.rglob("*.nbi")]
    assert any(name.startswith("spiking.render") for name in cached), cached
    for other in ("lif.", "izhikevich.", "network.", "model_voice.", "network_voice.", "stdp."):
        assert not [name for name in cached if name.startswith(other)], cached
    assert "spikesynth.models.spiking.render" in compiled
    for other in ("lif", "izhikevich", "network"):
        used = [k for k in compiled if f"models.{other}." in k or f"dsp.{other}" in k]
        assert not used, used
    assert not [k for k in compiled if "model_voice" in k or "network_voice" in k]
    # A poly patch: no mono or legato code (Program.solo None).
    solo = ("mono_play", "mono_note_off", "mono_voice", "priority_key")
    assert not [k for k in compiled if k.rsplit(".", 1)[-1] in solo], compiled
    assert not [name for name in cached
                if name.startswith(("voice_modes.mono", "voice_modes.priority"))]
    assert found["literal"] == []
    # One specialisation of every engine function.
    engine = ("spikesynth.render.", "spikesynth.notes.", "spikesynth.voice_modes.")
    assert {k: n for k, n in compiled.items() if k.startswith(engine) and n > 1} == {}


def test_controllers_modulate_a_copy_and_a_program_change_restores_it():
    default = load_patch(PATCHES / "default.yaml")
    lead = load_patch(PATCHES / "lead.yaml")
    synth = Synth(default, SR, 512, programs=[default, lead])
    base = synth.params[P_SPRING_HZ]
    synth.process(1000, [(0, bytes([0xB0, 74, 0]))])  # CC74 -> spring.frequency_hz 300
    assert synth.params[P_SPRING_HZ] == pytest.approx(300.0)
    assert synth.program.base[P_SPRING_HZ] == base  # the patch's values are untouched
    synth.process(2000, [(0, bytes([0xC0, 1]))])
    assert synth.patch.name == lead.name and synth.program_number == 1
    synth.process(2000, [(0, bytes([0xC0, 0]))])
    assert synth.patch.name == default.name
    assert synth.params[P_SPRING_HZ] == base
    stats = synth.stats()
    assert stats["program_changes"] == 2 and stats["programs_ignored"] == 0
    synth.process(10, [(0, bytes([0xC0, 5]))])  # no such program: ignored, counted
    assert synth.stats()["programs_ignored"] == 1 and synth.patch.name == default.name


def test_program_change_is_sample_accurate_and_keeps_held_notes():
    default = load_patch(PATCHES / "default.yaml")
    lif = load_patch(PATCHES / "lif.yaml")
    programs = [default, lif]
    events = [(0, bytes([0x90, 57, 100])), (7000, bytes([0xC0, 1])),
              (7100, bytes([0x90, 64, 90])), (20000, bytes([0x80, 57, 0]))]

    def render(block):
        synth = Synth(default, SR, block, programs=programs)
        out = np.concatenate([synth.process(min(block, 40000 - t),
                                            [(o - t, m) for o, m in events if t <= o < t + block])
                              for t in range(0, 40000, block)])
        return out, synth

    ref, synth = render(512)
    assert synth.patch.name == lif.name
    for block in (1, 64, 4096):
        out, _ = render(block)
        np.testing.assert_array_equal(out, ref)
    # The fade: no click; before the change the default voice, after it the LIF voice
    # playing both held notes (57, restarted, and 64, held back during the fade).
    steps = np.abs(np.diff(ref[:, 0]))
    assert steps[6900:7300].max() < 0.1  # around the switch: no step (the LIF's own resets
    #                                     later are band-limited steps of about 0.25)
    fade = int(0.004 * SR)
    assert np.abs(ref[7000 + fade - 8:7000 + fade, :]).max() < 0.02  # silent at the switch
    after = ref[9000:19000, 0].astype(np.float64)
    f_low = estimate_f0(after, SR, 220.0)
    assert abs(cents(f_low, 220.0)) < 1.0


def test_parameter_events_at_their_offset_and_validated():
    patch = load_patch(PATCHES / "default.yaml")
    synth = Synth(patch, SR, 512)
    loud = synth.process(SR // 2, [(0, bytes([0x90, 60, 100]))])[SR // 4:]
    synth.process(10, [(0, ParamChange(5, -20.0))])  # index 5: gain_db
    quiet = synth.process(SR // 2)[SR // 4:]
    ratio = 20 * np.log10(np.sqrt(np.mean(quiet.astype(float) ** 2))
                          / np.sqrt(np.mean(loud.astype(float) ** 2)))
    assert ratio == pytest.approx(-20.0 - patch["gain_db"], abs=1.0)  # from the patch's own
    index, value = synth.param_target("spring.frequency_hz", 900.0)
    assert index == P_SPRING_HZ and value == 900.0
    with pytest.raises(ValueError, match="expected a number from 5 to 20000 Hz"):
        synth.param_target("spring.frequency_hz", 1e6)
    with pytest.raises(ValueError, match="not a numeric parameter"):
        synth.param_target("lif.tau_ms", 3.0)
    synth.set_param("gain_db", 0.0)
    back = synth.process(SR // 2)[SR // 4:]
    assert np.sqrt(np.mean(back.astype(float) ** 2)) > 3 * np.sqrt(np.mean(quiet.astype(float)
                                                                           ** 2))


def test_every_bundled_model_describes_its_keys():
    for name in ("spiking", "lif", "izhikevich", "network"):
        model = get(name)
        for key in model.vector_keys:
            assert key in model.keys and model.index(key) >= 16


def test_block_size_invariance_survives_the_refactor():
    patch = load_patch(PATCHES / "lead.yaml")
    events = [(0, bytes([0x90, 60, 100])), (300, bytes([0xB0, 1, 100])),
              (900, bytes([0x80, 60, 0]))]
    ref, _ = render_in_blocks(patch, events, 4000, 512)
    out, _ = render_in_blocks(patch, events, 4000, 37)
    np.testing.assert_array_equal(out, ref)


def test_parameter_events_through_the_ring_reach_the_live_engine():
    import threading

    from spikesynth.events import EventRing

    patch = load_patch(PATCHES / "default.yaml")
    synth = Synth(patch, SR, 64)
    ring = EventRing(64)
    synth.live_input = (ring, threading.Lock())
    out = np.zeros((64, 2), dtype=np.float32)
    synth.process_ring(out, ring, 0, 0)
    synth.set_param("spring.frequency_hz", 700.0)
    assert ring.pending() == 1
    import time

    synth.process_ring(out, ring, time.monotonic_ns() + 10**9, 0)  # a block after its arrival
    assert synth.params[P_SPRING_HZ] == pytest.approx(700.0)
    assert synth.program.base[P_SPRING_HZ] == patch["spring.frequency_hz"]
    assert synth.stats()["params_set"] == 1
