"""Networks as voices: in tune where periodic, what each bundled network does is audible,
plasticity changes the weights while playing (and freezes at learning rate 0), renders are
block-size invariant, and switching to a different kind of patch fades instead of clicking."""

from __future__ import annotations

import numpy as np
import pytest
from audio_analysis import cents, estimate_f0
from rendering import render_in_blocks

from spikesynth import Synth, load_patch
from spikesynth.dsp import network as dnet
from spikesynth.engine import trace_voice
from spikesynth.events import EventRing
from spikesynth.patch import PATCH_DIR

SR = 48000


def target(note):
    return 440.0 * 2.0 ** ((note - 69) / 12)


@pytest.mark.parametrize("name", ["half_centre.yaml", "sync_ring.yaml", "gated_burst.yaml"])
def test_periodic_networks_play_in_tune(name):
    """The network's own period (measured at prepare time) is mapped onto the note's."""
    synth = Synth(load_patch(PATCH_DIR / name), SR, 4096)
    for note in (40, 57, 64):
        synth.reset()
        audio = synth.process(2 * SR, [(0, bytes([0x90, note, 100]))])
        f0 = estimate_f0(audio[SR:, 0], SR, target(note))
        assert abs(cents(f0, target(note))) < 1.0, (name, note)


def test_half_centre_alternates_between_left_and_right():
    synth = Synth(load_patch(PATCH_DIR / "half_centre.yaml"), SR, 4096)
    audio = synth.process(2 * SR, [(0, bytes([0x90, 36, 100]))])[SR:]
    # Burst envelopes per side (A left, B right), over a quarter period, are in anti-phase.
    frame = int(SR / target(36) / 4)
    audio = audio[: len(audio) // frame * frame]
    env = np.abs(audio).reshape(-1, frame, 2).max(axis=1)
    env -= env.mean(axis=0)
    corr = np.corrcoef(env[:, 0], env[:, 1])[0, 1]
    assert corr < -0.3


def test_gated_burst_bursts_only_after_the_drive_stops():
    patch = load_patch(PATCH_DIR / "gated_burst.yaml")
    current = np.zeros(SR)
    current[: SR // 2] = patch["network.drive"]
    tr = trace_voice(patch, SR, note=48, current=current)
    gate, burster = tr["spikes"]
    assert len(gate) > 10 and gate.max() < SR // 2 + SR // 100  # gate fires while driven
    assert len(burster) >= 3
    assert burster.min() > SR // 2  # the burster answers the release
    assert burster.max() - burster.min() < SR // 4  # ... with a burst


def _weights(synth):
    return synth.program.model.net.w_learned.copy()  # the weights the next note starts from


def test_plastic_chain_learns_across_notes_and_freezes_at_rate_zero():
    patch = load_patch(PATCH_DIR / "stdp_ring.yaml")
    synth = Synth(patch, SR, 4096)
    w0 = _weights(synth)
    note = [(0, bytes([0x90, 48, 100])), (SR, bytes([0x80, 48, 0]))]
    synth.process(2 * SR, note)
    w1 = _weights(synth)
    assert np.abs(w1 - w0).max() > 1e-3  # learned during the note, kept for the next
    assert np.all((w1 >= 0.0) & (w1 <= 1.0))
    synth.process(2 * SR, [(0, bytes([0xB0, 1, 0]))] + note)  # mod wheel: learning rate 0
    np.testing.assert_array_equal(_weights(synth), w1)
    synth.reset()  # reset keeps the patch; learned weights stay (they are the patch's state)
    fresh = Synth(patch, SR, 4096)
    np.testing.assert_array_equal(_weights(fresh), w0)


def test_network_weights_follow_stdp_while_playing():
    """Inside a note the chain's plastic weights move; the synapse arrays keep their shape."""
    patch = load_patch(PATCH_DIR / "stdp_ring.yaml")
    synth = Synth(patch, SR, 4096)
    synth.process(SR // 2, [(0, bytes([0x90, 48, 100]))])
    slot = int(np.nonzero(synth.state.V[:, 6] != 0)[0][0])
    w_now = synth.program.model.net.syn_state[slot][:, dnet.SS_W]
    assert not np.allclose(w_now, _weights(synth))


@pytest.mark.parametrize("name", ["sync_ring.yaml", "stdp_ring.yaml"])
def test_network_voices_block_size_invariant(name):
    patch = load_patch(PATCH_DIR / name)
    events = [(0, bytes([0x90, 50, 100])), (900, bytes([0x90, 57, 80])),
              (2500, bytes([0xB0, 1, 90])), (4000, bytes([0x80, 50, 0]))]
    ref, synth = render_in_blocks(patch, events, 7000, 512)
    w_ref = _weights(synth)
    for block in (1, 64):
        out, synth = render_in_blocks(patch, events, 7000, block)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(_weights(synth), w_ref)


def test_switching_to_another_kind_of_patch_fades_out_first():
    """Live path: a program change to a network patch fades the sounding voices (no click),
    holding incoming MIDI in the ring, then switches."""
    synth = Synth(load_patch(None), SR, 64)
    ring = EventRing(64)
    out = np.zeros((64, 2), dtype=np.float32)
    ring.push(0, bytes([0x90, 60, 110]))
    blocks = []
    for b in range(40):
        synth.process_ring(out, ring, b * 64 * 10**9 // SR, 0)
        blocks.append(out.copy())
    synth.use_patch(synth.prepare_patch(load_patch(PATCH_DIR / "sync_ring.yaml")))
    t = 40 * 64 * 10**9 // SR
    ring.push(t, bytes([0x90, 64, 100]))  # arrives during the fade: must not be lost
    for b in range(40, 120):
        synth.process_ring(out, ring, b * 64 * 10**9 // SR, 0)
        blocks.append(out.copy())
    audio = np.concatenate(blocks)
    assert synth.patch.name == "Sync Ring"
    assert np.abs(np.diff(audio[:, 0])).max() < 0.2  # faded, never cut
    # Both keys held: 60 restarts on the new patch after the fade, 64 (held back) plays there.
    assert synth.stats()["voices_active"] == 2
    notes = sorted(int(synth.state.V[i, 9]) for i in range(synth.state.V.shape[0])
                   if synth.state.V[i, 6] != 0)
    assert notes == [60, 64]
    assert np.abs(audio[-64 * 20:]).max() > 1e-3


def test_a_64_neuron_network_voice_renders_in_the_same_kernel():
    """The largest network a voice takes: 64 neurons, a sparse random wiring, polyphonic."""
    from spikesynth.patch import patch_from_dict

    rng = np.random.default_rng(3)
    neurons = [{"name": f"n{j}", "model": "izhikevich" if j % 2 else "lif",
                "gain": 1.0, "out": 1.0 / 64, "pan": float(rng.uniform(-1, 1))}
               for j in range(64)]
    for nd in neurons:
        if nd["model"] == "lif":
            nd.update(tau=10.0, t_ref=2.0, v0=float(rng.uniform(0, 1)))
    synapses = [{"pre": int(a), "post": int(b), "g_max": 0.05, "tau": 5.0, "delay": 1.0,
                 "sign": "excitatory" if a % 3 else "inhibitory", "plastic": bool(a % 2),
                 "w": 0.5}
                for a, b in rng.integers(0, 64, size=(300, 2)) if a != b]
    patch = patch_from_dict({"model": "network", "voices": 4,
                             "network": {"drive": 5.0, "neurons": neurons,
                                         "synapses": synapses, "reference_rate_hz": 40}})
    synth = Synth(patch, SR, 1024)
    audio = synth.process(SR // 2, [(0, bytes([0x90, n, 100])) for n in (48, 52, 55, 60)])
    assert np.all(np.isfinite(audio)) and np.sqrt(np.mean(audio**2)) > 1e-3
    assert synth.stats()["voices_active"] == 4
    assert synth.stats()["nan_resets"] == 0


def test_hot_reload_of_a_network_patch_keeps_its_running_state():
    """A parameter edit (same network) retunes the sounding voice without restarting it."""
    patch = load_patch(PATCH_DIR / "stdp_ring.yaml")
    synth = Synth(patch, SR, 512)
    before = synth.process(SR // 2, [(0, bytes([0x90, 48, 100]))])
    slot = int(np.nonzero(synth.state.V[:, 6] != 0)[0][0])
    state = synth.program.model.net.nstate[slot].copy()
    synth.set_patch(patch.replace(gain_db=patch["gain_db"] - 1.0))
    np.testing.assert_array_equal(synth.program.model.net.nstate[slot], state)
    after = synth.process(512)
    assert np.abs(after[0] - before[-1]).max() < 0.05  # continues, no jump


def test_the_pool_shares_one_low_pass_and_sounds_as_each_voice_alone():
    """The engine's pool adds every voice's knots into one buffer and low-passes it once
    (``render_pool``): with a flat envelope that is, to rounding, the sum of each voice
    rendered alone through its own ring and FIR (``render``), across chunk boundaries."""
    import copy

    from spikesynth import models
    from spikesynth.dsp import voice as vk
    from spikesynth.models.base import T_FREQ, solo_fields
    from spikesynth.prepare import note_tables

    patch = load_patch(PATCH_DIR / "half_centre.yaml")
    model = models.get("network")
    kernels = model.kernels
    notes = (48, 55, 60, 67)
    record = model.build(patch, len(notes))
    params = patch.param_vector()
    tables = note_tables(record, params, float(SR), None)
    V = np.zeros((len(notes), vk.N_FIELDS))
    for i, note in enumerate(notes):
        solo_fields(V, i, note)
        V[i, vk.F_GAIN_R] = 0.5 + 0.1 * i
        kernels["tune"](record, V, i, params, tables, float(SR), tables[T_FREQ, note])
        kernels["start"](record, V, i, params)
    alone_record, alone_V = copy.deepcopy(record), V.copy()
    frames = 3000
    pooled = np.zeros((2, frames))
    start = 0
    for span in (100, 37, 500, 1, 2362):  # chunks of 64 samples inside spans of any length
        resets = kernels["render_pool"](record, V, len(notes), np.ones(4, np.uint64),
                                        pooled[0], pooled[1], start, start + span)
        assert resets == 0
        start += span
    alone = np.zeros((2, frames))
    for i in range(len(notes)):
        assert kernels["render"](alone_record, alone_V, i, np.ones(4, np.uint64), alone[0],
                                 alone[1], 0, frames)
    peak = np.abs(alone).max()
    assert peak > 0.1 and np.abs(pooled[1]).max() > 0.1
    np.testing.assert_allclose(pooled, alone, rtol=0, atol=1e-12 * peak)


def test_a_reset_pool_starts_silent():
    """The shared low-pass's history is DSP state: after ``reset`` nothing of the notes
    before it is heard."""
    synth = Synth(load_patch(PATCH_DIR / "half_centre.yaml"), SR, 256)
    loud = synth.process(SR // 10, [(0, bytes([0x90, 60, 127]))])
    assert np.abs(loud[-256:]).max() > 1e-2
    synth.reset()
    assert not np.any(synth.process(256))
