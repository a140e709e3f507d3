"""The engine as a plugin: sample-accurate events, block-size invariance, MIDI handling,
polyphony and stealing, output safety."""

from __future__ import annotations

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0
from rendering import render_in_blocks

from spikesynth import Synth, load_patch
from spikesynth.dsp import blep
from spikesynth.engine import CEILING
from spikesynth.models.spiking import P_SPRING_HZ
from spikesynth.params import P_GAIN_DB

SR = 48000


def on(note, vel=100, ch=0):
    return bytes([0x90 | ch, note, vel])


def off(note, ch=0):
    return bytes([0x80 | ch, note, 0])


def cc(num, value, ch=0):
    return bytes([0xB0 | ch, num, value])


@pytest.fixture(scope="module")
def patch():
    return load_patch(None)


SCRIPT = [
    (0, on(60)), (101, on(64, 80)), (333, cc(1, 90)), (777, bytes([0xE0, 0x00, 0x50])),
    (1200, cc(64, 127)), (1500, off(60)), (2100, cc(74, 20)), (2500, on(67, 127)),
    (3001, cc(64, 0)), (4000, off(64)), (4095, bytes([0xD0, 100])), (5000, off(67)),
    (5200, on(72, 50)), (6100, cc(123, 0)),
]


def test_same_events_any_block_size_identical_output(patch):
    noisy = patch.replace(noise=0.2)
    for p in (patch, noisy):
        ref = render_in_blocks(p, SCRIPT, 8000, 512)[0]
        for block in (1, 64, 100, 4096):
            other = render_in_blocks(p, SCRIPT, 8000, block)[0]
            np.testing.assert_array_equal(other, ref)


def test_event_applies_at_its_exact_sample(patch):
    """The note starts exactly the stated latency after its event's sample: the master's
    look-ahead (``Synth.latency``) plus the voice's own (the band-limited events reach
    blep.HALF_WIDTH samples ahead: only their faint pre-ringing comes earlier, never before
    the event's sample plus the master's delay)."""
    W = blep.HALF_WIDTH
    for offset in (0, 1, 37, 511):
        synth = Synth(patch, SR, 1024)
        D = synth.latency
        assert D == round(1.5e-3 * SR)
        out = synth.process(1024, [(offset, on(60))])
        nonzero = np.nonzero(np.abs(out[:, 0]) > 0)[0]
        assert offset + D <= nonzero[0] <= offset + D + W
        start = offset + D + W
        assert out[start, 0] != 0.0
        early = np.abs(out[:start, 0]).max()
        assert early < 0.01 * np.abs(out[start:start + 96, 0]).max()


def test_zero_length_block_applies_events(patch):
    a = Synth(patch, SR, 256)
    a.process(0, [(0, on(60))])
    out_a = a.process(256)
    b = Synth(patch, SR, 256)
    out_b = b.process(256, [(0, on(60))])
    np.testing.assert_array_equal(out_a, out_b)


def test_output_shape_dtype_and_reset(patch):
    synth = Synth(patch, SR, 128)
    out = synth.process(300, [(0, on(60))])
    assert out.shape == (300, 2) and out.dtype == np.float32
    assert np.abs(out).max() > 0.01
    synth.reset()
    assert synth.stats()["voices_active"] == 0
    assert np.all(synth.process(300) == 0)


def test_note_off_releases_and_voice_ends(patch):
    synth = Synth(patch, SR, 512)
    synth.process(SR // 2, [(0, on(60))])
    assert synth.stats()["voices_active"] == 1
    synth.process(SR // 10, [(0, off(60))])
    assert synth.stats()["voices_active"] == 1  # still releasing
    release_s = patch["envelope.release_ms"] / 1000
    synth.process(int(2 * release_s * SR))
    assert synth.stats()["voices_active"] == 0


def test_velocity_zero_note_on_is_note_off(patch):
    synth = Synth(patch, SR, 512)
    synth.process(SR // 10, [(0, on(60))])
    synth.process(int(SR * 1.0), [(0, on(60, 0))])
    assert synth.stats()["voices_active"] == 0


def test_velocity_sets_amplitude(patch):
    levels = []
    for vel in (20, 64, 127):
        synth = Synth(patch, SR, 4096)
        out = synth.process(SR // 2, [(0, on(60, vel))])
        levels.append(np.sqrt(np.mean(out[SR // 4:] ** 2)))
    assert levels[0] < levels[1] < levels[2]


def test_sustain_pedal_holds_then_releases(patch):
    synth = Synth(patch, SR, 512)
    synth.process(100, [(0, cc(64, 127)), (10, on(60)), (20, on(64))])
    synth.process(SR, [(0, off(60)), (0, off(64))])
    assert synth.stats()["voices_active"] == 2  # held by the pedal
    synth.process(SR, [(0, cc(64, 0))])
    assert synth.stats()["voices_active"] == 0


def test_all_notes_off_and_all_sound_off(patch):
    for ctl in (120, 123):
        synth = Synth(patch, SR, 512)
        synth.process(1000, [(0, cc(64, 127))] + [(i, on(50 + i)) for i in range(6)])
        synth.process(SR, [(0, cc(ctl, 0))])
        assert synth.stats()["voices_active"] == 0
        assert np.abs(synth.process(1000)).max() < 1e-3


def test_polyphony_limit_and_steal_without_click(patch):
    small = patch.replace(voices=4)
    synth = Synth(small, SR, 4096)
    events = [(i * 2000, on(48 + i * 3, 127)) for i in range(12)]
    out = synth.process(30000, events)
    st = synth.stats()
    assert st["steals"] == 8
    # A steal fades the old voice instead of cutting it: no sample-to-sample jump larger
    # than the voices' own steepest slope.
    jumps = np.abs(np.diff(out[:, 0]))
    assert jumps.max() < 0.25
    playing = sum(1 for i in range(synth.state.V.shape[0]) if synth.state.V[i, 6] in (1, 2, 3))
    assert playing == 4


def test_steal_order_prefers_released_then_oldest_unprotected(patch):
    small = patch.replace(voices=3)
    synth = Synth(small, SR, 512)
    synth.process(10, [(0, on(60)), (1, on(64)), (2, on(67)), (5, off(64))])
    synth.process(10, [(0, on(72))])  # must steal the released 64
    from spikesynth.dsp import voice as vk

    held = sorted(int(synth.state.V[i, vk.F_NOTE]) for i in range(synth.state.V.shape[0])
                  if synth.state.V[i, vk.F_ENV_STAGE] in (vk.ENV_ATTACK, vk.ENV_DECAY))
    assert held == [60, 67, 72]
    synth.process(10, [(0, on(62))])  # all held: lowest (60) and highest (72) protected
    held = sorted(int(synth.state.V[i, vk.F_NOTE]) for i in range(synth.state.V.shape[0])
                  if synth.state.V[i, vk.F_ENV_STAGE] in (vk.ENV_ATTACK, vk.ENV_DECAY))
    assert held == [60, 62, 72]


def test_cc_mapping_changes_parameter(patch):
    synth = Synth(patch, SR, 512)
    before = synth.params[P_SPRING_HZ]
    synth.process(10, [(0, cc(74, 0))])
    assert synth.params[P_SPRING_HZ] == pytest.approx(300.0)
    synth.process(10, [(0, cc(74, 127))])
    assert synth.params[P_SPRING_HZ] == pytest.approx(8000.0)
    assert before != synth.params[P_SPRING_HZ]


def test_mod_wheel_vibrato_modulates_pitch(patch):
    synth = Synth(patch, SR, 4096)
    still = synth.process(SR, [(0, on(69))])[SR // 4:]
    synth.reset()
    wobble = synth.process(SR, [(0, on(69)), (0, cc(1, 127))])[SR // 4:]
    # With vibrato the spectrum's fundamental peak spreads: compare short-window f0 tracks.
    def track(x):
        hop = 2400
        return [estimate_f0(x[i:i + 4800], SR, 440.0, harmonics=4)
                for i in range(0, len(x) - 4800, hop)]
    assert np.ptp(cents(np.array(track(still)), 440.0)) < 2
    assert np.ptp(cents(np.array(track(wobble)), 440.0)) > 10


def test_output_never_exceeds_ceiling_nor_nonfinite(patch):
    loud = patch.replace(gain_db=24.0, voices=64)
    synth = Synth(loud, SR, 1024)
    out = synth.process(SR, [(i * 7, on(30 + i, 127)) for i in range(64)])
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() <= CEILING
    assert synth.stats()["limited_samples"] > 0


def test_blown_up_voice_is_reset_and_counted(patch):
    from spikesynth.dsp import voice as vk

    synth = Synth(patch, SR, 512)
    synth.process(100, [(0, on(60)), (0, on(67))])
    victim = [i for i in range(synth.state.V.shape[0]) if synth.state.V[i, vk.F_ENV_STAGE] != 0][0]
    synth.state.V[victim, vk.F_X] = np.nan
    out = synth.process(512)
    assert np.all(np.isfinite(out))
    assert synth.stats()["nan_resets"] == 1
    assert synth.stats()["voices_active"] == 1
    synth.params[P_GAIN_DB] = np.inf  # a broken master stage is caught too
    out = synth.process(512)
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= CEILING


def test_malformed_midi_is_counted_not_fatal(patch):
    synth = Synth(patch, SR, 512)
    out = synth.process(512, [(0, b""), (1, b"\x90\x3c"), (2, b"\x3c\x40"), (3, b"\xf0\x01\xf7"),
                              (4, b"\x90\x3c\x80"), (5, on(60))])
    assert synth.stats()["events_rejected"] == 5
    assert np.abs(out).max() > 0


def test_render_ring_matches_process_block(patch):
    """The live path (ring → one compiled call) renders what the offline path renders."""
    from spikesynth.events import EventRing

    synth = Synth(patch, SR, 64)
    ring = EventRing(64)
    ring.push(0, on(60))
    out = np.zeros((64, 2), dtype=np.float32)
    live = []
    for b in range(20):
        synth.process_ring(out, ring, b * 64 * 10**9 // SR, 0)
        live.append(out.copy())
    offline = Synth(patch, SR, 64).process(64 * 20, [(0, on(60))])
    np.testing.assert_array_equal(np.concatenate(live), offline)


def test_process_ring_never_raises(patch):
    synth = Synth(patch, SR, 64)
    out = np.ones((64, 2), dtype=np.float32)
    synth.process_ring(out, object(), 0, 0)  # not a ring at all: a fault, not an exception
    assert np.all(out == 0)
    assert synth.stats()["faults"] == 1


def test_latest_patch_request_wins_over_a_waiting_switch(patch):
    """Program changes in a row: default -> network (waits for a fade) -> lead. Lead wins."""
    from spikesynth.events import EventRing
    from spikesynth.patch import PATCH_DIR, load_patch

    synth = Synth(patch, SR, 64)
    ring = EventRing(16)
    ring.push(0, on(60))
    out = np.zeros((64, 2), dtype=np.float32)
    synth.process_ring(out, ring, 0, 0)
    synth.use_patch(synth.prepare_patch(load_patch(PATCH_DIR / "half_centre.yaml")))
    synth.use_patch(synth.prepare_patch(load_patch(PATCH_DIR / "lead.yaml")))
    for b in range(1, 20):
        synth.process_ring(out, ring, b * 64 * 10**9 // SR, 0)
    assert synth.patch.name == "Axon Lead"


def test_controllers_never_rewrite_the_patch(patch):
    """A controller that pushes threshold_high below threshold_low keeps each voice valid,
    and moving it back restores the patch's own thresholds."""
    from spikesynth.models.spiking import P_V_HIGH, P_V_LOW, P_V_RESET
    from spikesynth.patch import patch_from_text

    p = patch_from_text("controllers:\n  - {cc: 20, param: membrane.threshold_high, "
                        "min: 0.05, max: 2.0}\n")
    synth = Synth(p, SR, 512)
    synth.process(512, [(0, on(60)), (100, cc(20, 0))])
    out = synth.process(SR // 4, [(0, cc(20, 127))])
    assert np.all(np.isfinite(out)) and synth.stats()["faults"] == 0
    assert synth.params[P_V_HIGH] == pytest.approx(2.0)
    assert synth.params[P_V_LOW] == pytest.approx(0.2)
    assert synth.params[P_V_RESET] == pytest.approx(-0.3)


def test_lif_controller_cannot_divide_by_zero():
    from spikesynth.patch import patch_from_text

    p = patch_from_text("model: lif\nlif: {threshold: 1.0, reset: 0.0}\ncontrollers:\n"
                        "  - {cc: 20, param: lif.reset, min: 1.0, max: 2.0}\n")
    synth = Synth(p, SR, 512)
    out = synth.process(SR // 4, [(0, on(60)), (10, cc(20, 0)), (2000, off(60)),
                                  (3000, on(64))])
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= CEILING
    assert synth.stats()["faults"] == 0


def test_oversized_block_is_refused(patch):
    from spikesynth.events import EventRing

    synth = Synth(patch, SR, 64)
    with pytest.raises(ValueError, match="max_block"):
        synth.process_block(np.zeros((100, 2), np.float32), np.zeros((1, 4), np.int32), 0)
    out = np.ones((100, 2), np.float32)
    synth.process_ring(out, EventRing(4), 0, 0)  # the live path: silence, counted
    assert np.all(out == 0) and synth.stats()["faults"] == 1
