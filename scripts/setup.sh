#!/usr/bin/env bash
# Set up spikesynth on a fresh Debian machine: system libraries (when missing) and a venv.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test tools and the JACK server)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

need=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libsndfile.so || need+=(libsndfile1)
have_lib libportaudio.so || need+=(libportaudio2)
if [ "$dev" = 1 ]; then
    command -v jackd >/dev/null 2>&1 || need+=(jackd2)
    have_lib libjack.so || need+=(libjack-jackd2-0)
    have_lib libasound.so || need+=(libasound2)
    # The browser tests of the UI (tests/test_ui_browser.py): headless Chromium + its driver.
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fi
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${need[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
extras="live,plot"
[ "$dev" = 1 ] && extras="dev"
stamp=".venv/.spikesynth-$extras-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages ([$extras])"
    # pip's build chatter goes to a log, shown only if the install fails.
    if ! { .venv/bin/python -m pip install -q --upgrade pip &&
           .venv/bin/python -m pip install -q -e ".[$extras]"; } >.venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        echo "setup: installing the Python packages failed (log above: .venv/pip.log)" >&2
        exit 1
    fi
    touch "$stamp"
fi
