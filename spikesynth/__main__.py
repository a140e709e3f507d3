"""``python -m spikesynth``: the same command line as the ``spikesynth`` console script."""

from .cli import entry

entry()
