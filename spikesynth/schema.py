"""Patch keys: the :class:`Spec` record and the keys every voice model shares.

Each voice model adds its own keys (see :mod:`spikesynth.models`); :mod:`spikesynth.patch`
joins them into the full schema. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    """One patch key: its type, default, inclusive range and unit."""

    kind: str  # "float", "int", "str", "choice"
    default: object
    lo: float | None = None
    hi: float | None = None
    unit: str = ""
    doc: str = ""
    choices: tuple = ()
    controllable: bool = True  # may be the target of a CC mapping
    curve: str = "linear"  # how a control should move it: linear or exp (a UI hint)
    smooth: bool = False  # a live change glides there over params.SMOOTHING_MS (see render)


# Keys that every voice model has. Musical units throughout.
COMMON_SCHEMA: dict[str, Spec] = {
    "name": Spec("str", "untitled", doc="patch name"),
    "description": Spec("str", "", doc="what it sounds like"),
    "voices": Spec("int", 16, 1, 256, doc="polyphony", controllable=False),
    "gain_db": Spec("float", 0.0, -60.0, 24.0, "dB", "output gain"),
    "a4": Spec("float", 440.0, 380.0, 500.0, "Hz", "tuning reference", controllable=False),
    "transpose": Spec("float", 0.0, -96.0, 48.0, "semitones", "shifts every note",
                      smooth=True),
    "pitch_bend_range": Spec("float", 2.0, 0.0, 48.0, "semitones", "full-scale bend"),
    "stereo_spread": Spec("float", 0.5, 0.0, 1.0, "", "pan by key: 0 mono, 1 wide"),
    "velocity_sensitivity": Spec("float", 0.8, 0.0, 1.0, "", "0: velocity ignored"),
    "release_drive": Spec("choice", "hold", choices=("hold", "off"), controllable=False,
                          doc="note-off: hold the drive through the release, or remove it"),
    "noise": Spec("float", 0.0, 0.0, 1.0, "", "drive noise (fraction of the drive)",
                  smooth=True),
    "voice_mode": Spec("choice", "poly", choices=("poly", "mono", "legato"), controllable=False,
                       doc="poly; mono (one voice per channel, each note retriggers); legato "
                           "(one voice, overlapping notes change pitch without a retrigger)"),
    "glide_ms": Spec("float", 0.0, 0.0, 10000.0, "ms", "portamento time (0: none)"),
    "glide": Spec("choice", "legato", choices=("legato", "always"), controllable=False,
                  doc="glide only between overlapping (legato) notes, or on every note that "
                      "follows a sounding one (mono and poly)"),
    "note_priority": Spec("choice", "last", choices=("last", "low", "high"),
                          controllable=False, doc="mono modes: which held key sounds"),
    "envelope.attack_ms": Spec("float", 4.0, 0.0, 20000.0, "ms", curve="exp"),
    "envelope.decay_ms": Spec("float", 300.0, 1.0, 60000.0, "ms", "time to -60 dB of the way",
                              curve="exp"),
    "envelope.sustain_db": Spec("float", -4.0, -80.0, 0.0, "dB"),
    "envelope.release_ms": Spec("float", 300.0, 1.0, 60000.0, "ms", "time to -60 dB",
                                curve="exp"),
    "vibrato.depth_cents": Spec("float", 25.0, 0.0, 200.0, "cents", "at full mod wheel",
                                smooth=True),
    "vibrato.rate_hz": Spec("float", 5.5, 0.05, 20.0, "Hz", smooth=True),
    "mpe.zone": Spec("choice", "off", choices=("off", "lower", "upper"), controllable=False,
                     doc="MPE zone (off: only MPE Configuration Messages configure one)"),
    "mpe.members": Spec("int", 15, 1, 15, doc="member channels (lower: 2.., upper: 15 down)",
                        controllable=False),
    "mpe.bend_range": Spec("float", 48.0, 0.0, 96.0, "semitones", "per-note bend range",
                           controllable=False),
    "mpe.master_bend_range": Spec("float", 2.0, 0.0, 96.0, "semitones",
                                  "master channel bend range", controllable=False),
    "tuning.scl": Spec("str", "", doc="Scala scale (.scl), relative to the patch file; "
                       "empty: 12-tone equal temperament from a4", controllable=False),
    "tuning.kbm": Spec("str", "", doc="Scala keyboard map (.kbm), relative to the patch file; "
                       "empty: tuning-library's standard mapping", controllable=False),
}
