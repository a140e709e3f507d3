"""spikesynth: a real-time, audio-rate spiking-neuron synthesizer."""

import os as _os

# One OpenBLAS thread unless the user chose (OpenBLAS reads any of these three; they take
# effect only if set before numpy loads OpenBLAS, and children inherit them): spikesynth does
# no linear algebra, and OpenBLAS's workers (one per core, in numpy's copy and again in
# scipy's, which numba loads to check for BLAS) spin as they start: about 0.3 s of CPU in
# every process on a 2-core machine, and threads that compete with the audio thread later.
if not any(k in _os.environ for k in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                                      "OMP_NUM_THREADS")):
    _os.environ["OPENBLAS_NUM_THREADS"] = "1"

from . import _cache  # noqa: F401  (first: chooses numba's cache before any kernel exists)

__version__ = "0.1.0"

__all__ = ["Patch", "Synth", "load_patch", "__version__"]


def __getattr__(name):
    # Lazy public API: importing the package compiles nothing and opens no device.
    if name in ("Patch", "load_patch"):
        from . import patch

        return getattr(patch, name)
    if name == "Synth":
        from .engine import Synth

        return Synth
    raise AttributeError(name)
