#!/usr/bin/env bash
# Make the spiking ear's demo pictures in docs/ (run after scripts/setup.sh --dev):
#   docs/ear_digits.wav           spoken digits from espeak-ng (made here, not committed)
#   docs/ear_digits.png           spikesynth listen: raster and time surfaces for tau 2, 10, 50 ms
#                                 (its 13 MB build/ear_digits.npz stays out of git)
#   docs/ear_neuron_filter.png    the LIF as a filter: rate against (cos + 1)/2 input frequency
#   build/ear_digits_{resynth,vocoder}.wav   the neural effects on the digits
# Usage: scripts/make_ear_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v espeak-ng >/dev/null 2>&1; then
    echo "make_ear_demo: espeak-ng is missing: run scripts/setup.sh --dev" >&2
    exit 1
fi
src_hash=$(cat $(find spikesynth -name '*.py' | sort) | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache/$src_hash}"
# Spoken digits, in the spirit of the Spiking Heidelberg Digits (espeak-ng writes 22050 Hz mono).
espeak-ng -v en-us -s 140 -w docs/ear_digits.wav "zero, one, two, three, four, five"
mkdir -p build
.venv/bin/spikesynth listen docs/ear_digits.wav -o build/ear_digits --tau-ms 2,10,50
cp build/ear_digits.png docs/ear_digits.png
.venv/bin/python - <<'PY'
import numpy as np

from spikesynth.neurons import draw_rate_response, rate_response
from spikesynth.plot import write_figure

responses = [rate_response(gain=g, seconds=4.0, settle_s=1.0) for g in (1.2, 1.5, 3.0)]
fig = draw_rate_response(responses, "LIF (tau 2 ms, threshold 1, reset 0): firing rate for "
                         "gain (cos + 1)/2 input")
write_figure(fig, "docs/ear_neuron_filter.png")
for r in responses:
    at = [f"{f:g} Hz {np.interp(f, r.frequency_hz, r.rate_hz):.0f}/s" for f in (2, 50, 5000)]
    print(f"gain {r.gain:g}: cutoff {r.cutoff_hz:.0f} Hz; rate at {', '.join(at)}")
print("wrote docs/ear_neuron_filter.png")
PY
# The neural effects on the digits (listen to them; not committed).
.venv/bin/spikesynth process patches/ear_resynth.yaml docs/ear_digits.wav -o build/ear_digits_resynth.wav
.venv/bin/spikesynth process patches/ear_vocoder.yaml docs/ear_digits.wav -o build/ear_digits_vocoder.wav \
    --note A2:100:0:4.4 --note E3:100:0:4.4 --note A3:100:0:4.4
