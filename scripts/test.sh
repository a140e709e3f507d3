#!/usr/bin/env bash
# Set everything up (venv, Python packages, PortAudio, a JACK server) and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
# numba's cache does not notice when a kernel called from another file changes: key the
# cache by the package sources so a stale compiled kernel is never used.
src_hash=$(cat $(find spikesynth -name '*.py' | sort) | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache/$src_hash}"
exec .venv/bin/python -m pytest "$@"
