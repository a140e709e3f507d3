"""Compile ``play``'s engine and audio callback into the numba cache, ahead of the JACK tests.

``scripts/test.sh`` runs this in the background while the tests that need no real-time audio
run, so the real-time part does not wait minutes for a cold ``play`` (the default folder's
every program; the callback with the UI's probe for the UI tests' programs) with one core
idle. Whatever it has not finished is compiled by the tests themselves, as before: it only
saves time.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jackserver import compile_play, ui_folder  # noqa: E402


def main() -> None:
    began = time.monotonic()
    compile_play()  # the default patch's folder, as play and the rig load it
    folder = ui_folder()
    try:
        compile_play(folder / "default.yaml", probe=True)  # play --ui: tests/test_ui_browser.py
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"warm_play: play's engine and callbacks compiled in "
          f"{time.monotonic() - began:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
