#!/usr/bin/env bash
# Set everything up (venv, Python packages, PortAudio, a JACK server) and run the whole test suite.
# Extra arguments go to pytest (to both parts below).
#
# Two parts: the tests that need no real-time audio run on two processes (pytest-xdist; one
# module per process, so a module's fixtures stay together), which halves the wall time of
# numba's compiles on a 2-core machine; the real-time tests (marked `jack`: a JACK server,
# play, the browser) then run alone, so nothing else competes with their audio threads.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
workers="${SPIKESYNTH_TEST_WORKERS:-2}"
# play's engine and callbacks compile meanwhile (minutes on a cold cache): tests/warm_play.py;
# not when the arguments name test files (a few chosen tests).
warm=""
chosen=0
for arg in "$@"; do [ -e "${arg%%::*}" ] && chosen=1; done
if [ "$chosen" = 0 ]; then
    .venv/bin/python tests/warm_play.py &
    warm=$!
fi
status=0
# --durations: the slowest tests in CI's log, for whoever next keeps CI under its limit.
.venv/bin/python -m pytest -n "$workers" --dist loadfile -m "not jack" --durations=15 "$@" \
    || status=$?
[ -z "$warm" ] || wait "$warm" || echo "test.sh: warming play's cache failed; the JACK tests compile it" >&2
jack=0
.venv/bin/python -m pytest -m jack --durations=10 "$@" || jack=$?
# 5 is pytest's "no test selected" (a selection with tests of one part only): not a failure
# unless neither part ran a test.
if [ "$status" = 5 ] && [ "$jack" = 5 ]; then exit 5; fi
[ "$status" = 5 ] && status=0
[ "$jack" = 5 ] && jack=0
[ "$status" != 0 ] && exit "$status"
exit "$jack"
