"""How clean each pitched bundled patch sounds: inharmonic energy, mono fundamental, chords.

For every pitched patch and the notes C3..C8 at 44.1 and 48 kHz, a held note (velocity 100,
the envelope held flat at 0 dB so the figure measures the voice, not its decay) is rendered
and its steady part analysed with :func:`spikesynth.analysis.inharmonic_db`: the energy more
than 1 % of f0 away from every harmonic, relative to the harmonic energy (worst channel).
A figure over the issue's target is marked ``*``. Then, per network patch, the mono sum's
fundamental (:func:`spikesynth.analysis.mono_fundamental_db`), the cost per voice-sample of
each model's anti-aliasing scheme, and (``--levels``) every bundled patch's loudness at C2..C7
(BS.1770, velocity 100, no input: as a plain ``render --note``) and the gain reduction of an
8-note velocity-127 chord (listening patches hear quiet noise), measured against the same
render with the limiter bypassed.

Run: .venv/bin/python benchmarks/bench_clean.py [--rates 44100,48000] [--patches a,b] [--levels]
(with NUMBA_CACHE_DIR keyed by the sources as scripts/test.sh sets it, or a fresh cache:
numba does not notice a changed kernel called from another file)
Prints the tables; asserts only that every render is finite.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spikesynth import Synth, load_patch
from spikesynth.analysis import (
    clean_analysis_seconds,
    gain_reduction_db,
    inharmonic_db,
    loudness_lufs,
    mono_fundamental_db,
)
from spikesynth.patch import PATCH_DIR, list_patches

NOTES = (48, 60, 72, 84, 96, 108)
NOTE_NAMES = ("C3", "C4", "C5", "C6", "C7", "C8")
#: Pitched patches (sold as playing the note's pitch), and which of them are networks.
PITCHED = ("default", "bass", "lead", "pad", "lif", "izhikevich_rs", "izhikevich_ch")
PITCHED_NETWORKS = ("sync_ring", "gated_burst", "half_centre")
TARGET = {48: -60, 60: -60, 72: -60, 84: -50, 96: -40, 108: -30}
TARGET_NETWORK = {48: -40, 60: -40, 72: -40, 84: -35, 96: -30, 108: -25}
SETTLE_S = 0.4


def held_note(patch, samplerate, note, seconds, settle=SETTLE_S, velocity=100):
    """Render ``note`` held for ``settle + seconds``; return the last ``seconds`` (n, 2)."""
    patch = patch.replace(envelope__sustain_db=0.0)
    settle = settle + patch["envelope.attack_ms"] * 1e-3
    synth = Synth(patch, samplerate, max_block=2048)
    frames = int(round((settle + seconds) * samplerate))
    audio = synth.process(frames, [(0, bytes([0x90, note, velocity]))])
    assert np.all(np.isfinite(audio))
    return audio[frames - int(np.ceil(seconds * samplerate)):].astype(np.float64)


def note_hz(patch, note):
    return patch["a4"] * 2.0 ** ((note + patch["transpose"] - 69) / 12.0)


def clean_table(names, rates):
    print("inharmonic energy, dB (1 s steady part or longer; * over target)")
    print(f"{'patch':16s} {'kHz':>5s} " + " ".join(f"{n:>7s}" for n in NOTE_NAMES))
    for name in names:
        patch = load_patch(PATCH_DIR / f"{name}.yaml")
        target = TARGET_NETWORK if name in PITCHED_NETWORKS else TARGET
        for sr in rates:
            cells = []
            for note in NOTES:
                f0 = note_hz(patch, note)
                audio = held_note(patch, sr, note, clean_analysis_seconds(f0))
                db = inharmonic_db(audio, sr, f0)
                cells.append(f"{db:6.1f}{'*' if db > target[note] else ' '}")
            print(f"{name:16s} {sr / 1000:5.1f} " + " ".join(cells), flush=True)


def mono_table(names, sr=44100):
    print("\nmono sum (L+R): fundamental relative to the strongest partial, dB")
    print(f"{'patch':16s} " + " ".join(f"{n:>7s}" for n in NOTE_NAMES))
    for name in names:
        patch = load_patch(PATCH_DIR / f"{name}.yaml")
        cells = []
        for note in NOTES:
            f0 = note_hz(patch, note)
            audio = held_note(patch, sr, note, clean_analysis_seconds(f0))
            cells.append(f"{mono_fundamental_db(audio, sr, f0):7.1f}")
        print(f"{name:16s} " + " ".join(cells), flush=True)


def cost_table(names, sr=48000, seconds=2.0, voices=8):
    print(f"\ncost per voice-sample ({voices} voices, notes C3..C6, {sr} Hz, CPU time)")
    for name in names:
        patch = load_patch(PATCH_DIR / f"{name}.yaml").replace(voices=voices)
        synth = Synth(patch, sr, 512)
        events = [(0, bytes([0x90, 48 + 5 * k, 100])) for k in range(voices)]
        synth.process(512, events)
        out = np.zeros((512, 2), dtype=np.float32)
        none = np.zeros((1, 4), dtype=np.int32)
        blocks = int(seconds * sr / 512)
        t0 = time.process_time()  # CPU time: the machine may be shared
        for _ in range(blocks):
            synth.process_block(out, none, 0)
        ns = (time.process_time() - t0) / (blocks * 512 * voices) * 1e9
        print(f"  {name:16s} {ns:7.1f} ns")


CHORD = (48, 52, 55, 60, 64, 67, 72, 76)
LEVEL_NOTES = (36, 48, 60, 72, 84, 96)


def level_table(sr=44100, seconds=0.8):
    print(f"\nloudness, LUFS ({seconds} s, velocity 100) and 8-note chord gain reduction, dB")
    print(f"{'patch':16s} " + " ".join(f"{n:>6s}" for n in ("C2", "C3", "C4", "C5", "C6", "C7"))
          + "   chord GR")
    c4 = []
    for path in list_patches(PATCH_DIR):
        patch = load_patch(path)
        noise = 0.05 * np.random.default_rng(1).standard_normal(int(1.0 * sr))
        cells = []
        for note in LEVEL_NOTES:
            synth = Synth(patch, sr, 2048)
            audio = synth.process(int(seconds * sr), [(0, bytes([0x90, note, 100]))])
            cells.append(loudness_lufs(audio, sr))
        c4.append(cells[2])
        renders = []
        for bypass in (False, True):
            synth = Synth(patch, sr, 2048)
            synth.bypass_limiter = bypass
            renders.append(synth.process(sr, [(0, bytes([0x90, n, 127])) for n in CHORD],
                                         audio_in=noise if synth.listening else None))
        gr = gain_reduction_db(*renders)
        print(f"{path.stem:16s} " + " ".join(f"{x:6.1f}" for x in cells) + f"   {gr:6.2f}",
              flush=True)
    finite = [x for x in c4 if np.isfinite(x)]
    print(f"median at C4: {np.median(finite):.1f} LUFS, spread {max(finite) - min(finite):.1f} LU")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="44100,48000")
    ap.add_argument("--patches", default=",".join(PITCHED + PITCHED_NETWORKS))
    ap.add_argument("--levels", action="store_true", help="only the loudness and chord table")
    args = ap.parse_args()
    if args.levels:
        level_table()
        return
    rates = [int(r) for r in args.rates.split(",")]
    names = [n for n in args.patches.split(",") if n]
    clean_table(names, rates)
    mono_table([n for n in names if n in PITCHED_NETWORKS])
    cost_table(names)


if __name__ == "__main__":
    main()
