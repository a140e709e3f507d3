"""spikesynth: a real-time, audio-rate spiking-neuron synthesizer."""

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
