#!/usr/bin/env bash
# Set up spikesynth on a fresh Debian machine: system libraries (when missing) and a venv.
# Usage: scripts/setup.sh [--dev] [--bench]
#   --dev    adds the test tools and the JACK server
#   --bench  adds SuperCollider's server and sc3-plugins (benchmarks/bench_peers.py)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
bench=0
for arg in "$@"; do
    case "$arg" in
        --dev) dev=1 ;;
        --bench) bench=1 ;;
        *) echo "setup: unknown option $arg (expected --dev, --bench)" >&2; exit 2 ;;
    esac
done

need=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libsndfile.so || need+=(libsndfile1)
have_lib libportaudio.so || need+=(libportaudio2)
if [ "$dev" = 1 ]; then
    command -v jackd >/dev/null 2>&1 || need+=(jackd2)
    have_lib libjack.so || need+=(libjack-jackd2-0)
    have_lib libasound.so || need+=(libasound2)
    command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)  # the ear's demo input
    # The browser tests of the UI (tests/test_ui_browser.py): headless Chromium + its driver.
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fi
if [ "$bench" = 1 ]; then
    have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
    have_pkg supercollider-server || need+=(supercollider-server)
    have_pkg sc3-plugins-server || need+=(sc3-plugins-server)
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
extras="live,plot,batch"
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
