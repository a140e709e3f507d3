"""Shared pytest fixtures."""

from __future__ import annotations

import pytest
from jackserver import JackServer, _clear_stale_registry


def pytest_sessionstart(session):
    # Entries left by servers that died in earlier runs would exhaust JACK's registry.
    _clear_stale_registry()

# ---------------------------------------------------------------------------------------
# JACK: a private dummy-driver server per test (see tests/jackserver.py).
# A missing or broken jackd makes these tests FAIL (JackServerError), never skip.


@pytest.fixture
def jack_server(request, monkeypatch):
    """A running ``jackd -d dummy`` (48 kHz, 64-frame period), stopped after the test.

    The test's environment points at it (``JACK_DEFAULT_SERVER``, ``JACK_NO_START_SERVER``),
    so JACK clients opened in the test process (python-rtmidi, JACK-Client) reach it;
    subprocesses get ``jack_server.env``. Other settings through indirect parametrization:
    ``@pytest.mark.parametrize("jack_server", [{"period": 1024}], indirect=True)`` (any
    :class:`JackServer` argument).
    """
    options = {"samplerate": 48000, "period": 64}
    options.update(getattr(request, "param", None) or {})
    server = JackServer(**options)
    try:
        server.start()
        for key, value in server.env_vars.items():
            monkeypatch.setenv(key, value)
        yield server
    finally:
        # Shown by pytest only when the test fails ("Captured stdout teardown").
        log = server.log_text()
        if log:
            print(f"--- {server!r} output (last 3000 characters) ---\n{log[-3000:]}")
        server.stop()
