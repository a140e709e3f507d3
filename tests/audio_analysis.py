"""Independent measurements of rendered audio (f0 from the spectrum, inharmonic energy).

They now live in the package (:mod:`spikesynth.analysis`, also used by the library manifests
and sweeps); this module keeps the tests' imports working. They read only the audio, never
the kernel's own period.
"""

from __future__ import annotations

from spikesynth.analysis import cents, estimate_f0, inharmonic_ratio_db

__all__ = ["cents", "estimate_f0", "inharmonic_ratio_db"]
