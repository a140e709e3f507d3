"""``python -m spikesynth``: the same command line as the ``spikesynth`` console script."""

import sys

from .cli import main

sys.exit(main())
