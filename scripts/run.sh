#!/usr/bin/env bash
# Set everything up, then run spikesynth. With no arguments: render the bundled default
# patch to default.wav (a short phrase). Any arguments are passed to the spikesynth CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$#" -eq 0 ]; then
    set -- render patches/default.yaml -o default.wav \
        --note C3:90:0:1.5 --note E3:80:0.5:1.5 --note G3:80:1:1.5 --note C4:100:1.5:2
fi
exec .venv/bin/spikesynth "$@"
