"""Shared pytest fixtures."""

from __future__ import annotations

import signal

import pytest
from jackserver import JackServer, _clear_stale_registry

# pytest-xdist's workers ignore SIGINT (SIG_IGN, which every subprocess they start inherits):
# the tests of Ctrl-C need Python's own handler, in the worker and in what it starts.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session):
    # Entries left by servers that died in earlier runs would exhaust JACK's registry.
    _clear_stale_registry()


# The modules with the longest compiles, first: pytest-xdist (``--dist loadfile``) hands
# modules out in collection order, and one of these begun last kept one of two processes
# busy for minutes after the other ran out of work (test_rt_callback: 11 minutes on the
# slow 2-core CI machine, 388 s of it one probe compile).
HEAVY_FIRST = ("test_rt_callback.py", "test_levels.py", "test_seam.py",
               "test_hardening_render.py", "test_network_voices.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    # A stable sort, the same in every process (xdist requires one order).
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# jackd's log line for a client that missed its cycle (an xrun).
MISSED_CYCLE = "was not finished"
# Runs after the first of a JACK test that failed while its server logged missed cycles.
JACK_RERUNS = 2


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Run a test on a private JACK server again (at most JACK_RERUNS times) when it failed
    and its server logged missed cycles meanwhile.

    The test VMs miss a JACK cycle a few times a second even when idle (seen with a lone
    Python sine client). In a missed cycle JACK itself drops or repeats MIDI and the
    recording has a gap, which can spoil a measurement before anything of ours is involved.
    A failure with no missed cycle in jackd's log is final at once, and so is one in set-up;
    each rerun is printed, and the report is the last run's.
    """
    if item.get_closest_marker("jack") is None or "jack_server" not in item.fixturenames:
        return None
    from _pytest.runner import runtestprotocol

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for run in range(JACK_RERUNS + 1):
        item.jack_missed_cycles = 0
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        call_failed = any(r.when == "call" and r.failed for r in reports)
        if not (call_failed and item.jack_missed_cycles and run < JACK_RERUNS):
            break
        crash = next(r for r in reports if r.when == "call").longrepr
        reason = getattr(getattr(crash, "reprcrash", None), "message", str(crash)) or "?"
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"\nrerun {run + 1} of {item.nodeid}: it failed while jackd logged "
                f"{item.jack_missed_cycles} missed cycles ({reason.splitlines()[0][:160]})")
        item._initrequest()  # noqa: SLF001 - fresh function-scoped fixtures, as pytest-rerunfailures does
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True

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
        request.node.jack_missed_cycles = log.count(MISSED_CYCLE)
        if log:
            print(f"--- {server!r} output (last 3000 characters) ---\n{log[-3000:]}")
        server.stop()
