#!/usr/bin/env bash
# Set everything up, then run spikesynth. With no arguments: render the bundled default
# patch to default.wav (a short phrase). Any arguments are passed to the spikesynth CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# numba cache keyed by the package sources (a changed callee must not reuse a stale caller).
src_hash=$(cat $(find spikesynth -name '*.py' | sort) | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache/$src_hash}"
if [ "$#" -eq 0 ]; then
    set -- render patches/default.yaml -o default.wav \
        --note C3:90:0:1.5 --note E3:80:0.5:1.5 --note G3:80:1:1.5 --note C4:100:1.5:2
fi
exec .venv/bin/spikesynth "$@"
