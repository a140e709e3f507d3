"""Shared pytest fixtures."""

from __future__ import annotations

import pytest
from jackserver import JackServer

# ---------------------------------------------------------------------------------------
# JACK: a private dummy-driver server per test (see tests/jackserver.py).
# A missing or broken jackd makes these tests FAIL (JackServerError), never skip.


@pytest.fixture
def jack_server(monkeypatch):
    """A running ``jackd -d dummy`` (48 kHz, 64-frame period), stopped after the test.

    The test's environment points at it (``JACK_DEFAULT_SERVER``, ``JACK_NO_START_SERVER``),
    so JACK clients opened in the test process (python-rtmidi, JACK-Client) reach it;
    subprocesses get ``jack_server.env``.
    """
    server = JackServer(samplerate=48000, period=64)
    try:
        server.start()
        for key, value in server.env_vars.items():
            monkeypatch.setenv(key, value)
        yield server
    finally:
        server.stop()
