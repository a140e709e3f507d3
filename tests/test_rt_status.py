"""``play`` on a terminal of a given width: the status line never wraps; ``--keys`` without
an ALSA sequencer plays with a one-line note instead of failing.

``play`` runs in a pseudo-terminal whose size is set (``TIOCSWINSZ``) to 80 and 40 columns,
on the ``jack_server`` fixture's private JACK server.
"""

from __future__ import annotations

import fcntl
import struct
import termios

import pytest
from jackserver import compile_play
from test_live_extras import CLEAR, TerminalPlayer
from test_play_jack import wait_for

pytestmark = pytest.mark.jack


def sized_player(server, columns, *args, env=None):
    player = TerminalPlayer.__new__(TerminalPlayer)
    import os
    import subprocess
    import sys
    import threading

    from test_play_jack import ROOT

    player.master, player.slave = os.openpty()
    fcntl.ioctl(player.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    player.termios_before = termios.tcgetattr(player.slave)
    compile_play()  # the default patch's folder, as play loads it
    cmd = [sys.executable, "-m", "spikesynth.cli", "play", "--hostapi", "JACK", *args]
    player.proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(server.env, **(env or {})),
                                   stdin=player.slave, stdout=player.slave,
                                   stderr=player.slave, start_new_session=True)
    player._data = bytearray()
    player._stop = threading.Event()
    player._reader = threading.Thread(target=player._read, daemon=True)
    player._reader.start()
    return player


@pytest.mark.parametrize("columns", [80, 40])
def test_status_line_fits_the_terminal_and_refreshes_add_no_line(jack_server, columns):
    player = sized_player(jack_server, columns, "--midi-in", "off")
    try:
        player.wait_text("spikesynth: playing", 120)
        start = player.text.index("spikesynth: playing")
        wait_for(lambda: player.text[start:].count(CLEAR) >= 12, 20, "a dozen refreshes")
        after = player.text[start:]
        body = after.split("\n", 1)[1]  # everything after the start line
        assert "\n" not in body.rstrip("\r\n"), repr(body[-500:])  # no refresh added a line
        updates = [u for u in body.split(CLEAR)[1:-1] if u]
        assert len(updates) >= 10
        for u in updates:
            assert len(u) <= columns - 1, (len(u), u)
            assert ("rt" in u.split()) or ("(rt)" in u), u  # says the compiled callback runs
    finally:
        player.close()


def test_keys_without_midi_input_plays_with_midi_off(jack_server, tmp_path):
    """MIDI input that cannot open (a missing ALSA sequencer, here made certain on any
    machine by an ``rtmidi`` that fails to import: the same ``MidiUnavailable``) does not
    stop ``play --keys``: it says so in one line and plays from the keyboard."""
    (tmp_path / "rtmidi.py").write_text("raise ImportError('no rtmidi here')\n")
    player = sized_player(jack_server, 200, "--keys", env={"PYTHONPATH": str(tmp_path)})
    try:
        player.wait_text("spikesynth: playing", 120)
        notes = [ln for ln in player.text.splitlines() if "MIDI input is off" in ln]
        assert len(notes) == 1 and notes[0].strip().startswith("spikesynth: note:"), player.text
        assert "no MIDI" in player.text
        player.wait_update(lambda u: "octave" in u, 10, "a status line with the keys")
        player.type("q")
        assert player.proc.wait(10) == 0, player.text
        assert "Traceback" not in player.text
    finally:
        player.close()
