#!/usr/bin/env bash
# Set everything up (venv, Python packages, PortAudio, a JACK server) and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
