"""A private JACK server for tests: ``jackd`` with the dummy driver, started and always stopped.

The dummy driver needs no sound card and runs the JACK graph in real time from a timer, so
MIDI and audio clients behave as they would on hardware. Each server gets a name no running
server has (from a small pool: see :func:`reserve_server_name`);
clients find it through ``JACK_DEFAULT_SERVER`` (libjack reads it at every
``jack_client_open``), and ``JACK_NO_START_SERVER=1`` stops any client from silently
auto-starting a *default* server instead.

PortAudio (and so ``sounddevice``) scans its host APIs once, when it is initialised at
import time: the JACK host API only appears if a server is reachable at that moment. So a
process that wants sounddevice on the test server must have the environment set before it
imports sounddevice; :func:`probe_sounddevice` does that in a subprocess.

Thread: main (test process) only.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

__all__ = ["JackServer", "JackServerError", "can_use_realtime", "probe_sounddevice"]


NAME_POOL = 8  # JACK2's registry holds 8 servers (MAX_SERVERS in its shm.c)


def _live_server_names() -> set[str]:
    """The ``-n`` names of the jackd processes running on this machine (from /proc)."""
    names = set()
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"jackd" and b"-n" in argv[:-1]:
            names.add(argv[argv.index(b"-n") + 1].decode(errors="replace"))
    return names


def reserve_server_name() -> tuple[str, int | None]:
    """A server name no running jackd uses and no other test holds, from a fixed pool of
    ``NAME_POOL`` names, with the lock (a file descriptor) that holds it until released.

    Why a pool: jackd registers each server in a machine-wide table of 8 slots and frees the
    slot when it exits cleanly; a jackd that was killed (a test run cut short) leaves its slot
    taken, and jackd reclaims such a slot only for a server of the same name. With unique
    names eight killed servers made every later jackd fail ("Too many servers already
    active"); with reused names the next server of that name takes its slot back. The lock
    (``flock`` on a file per name) keeps two test processes from picking the same name.
    """
    import fcntl

    folder = Path(tempfile.gettempdir()) / "spikesynth-jack-names"
    folder.mkdir(exist_ok=True)
    live = _live_server_names()
    for k in range(NAME_POOL):
        name = f"spikesynth-test-{k}"
        if name in live:
            continue
        fd = os.open(folder / f"{k}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return name, fd
    # Every name in use: a unique one (jackd will say whether its table has room).
    return f"spikesynth-test-{os.getpid()}-{uuid.uuid4().hex[:8]}", None


class JackServerError(RuntimeError):
    """jackd is missing, would not start, or does not accept clients."""


# Servers started by this process and not yet stopped: stopped at interpreter exit too, so a
# crashed test run leaves no jackd behind.
_LIVE: set[JackServer] = set()


def _set_parent_death_signal():  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child (jackd) if the process that started it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


_REALTIME: bool | None = None


def can_use_realtime() -> bool:
    """Whether processes started from here may use SCHED_FIFO (asked once, in a child)."""
    global _REALTIME
    if _REALTIME is None:
        if not hasattr(os, "sched_setscheduler"):
            _REALTIME = False
        else:
            probe = ("import os; os.sched_setscheduler(0, os.SCHED_FIFO, "
                     "os.sched_param(os.sched_get_priority_min(os.SCHED_FIFO)))")
            _REALTIME = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                       timeout=30).returncode == 0
    return _REALTIME


class JackServer:
    """One ``jackd -d dummy`` process with a unique server name.

    Parameters
    ----------
    samplerate : int
        Hz.
    period : int
        Frames per JACK cycle.
    name : str, optional
        Server name; by default one of ``spikesynth-test-0..7`` that no running jackd uses.
    start_timeout : float
        Seconds to wait for the server to accept clients.
    realtime : bool, optional
        Run the JACK threads with SCHED_FIFO (``--realtime``) or not (``--no-realtime``).
        None (default): real-time when this machine allows it (:func:`can_use_realtime`).
        Without it, a 64-frame period (1.33 ms) on a busy 2-core machine misses cycles
        ("client … was not finished") and the MIDI of a missed cycle is lost.
    """

    def __init__(self, samplerate: int = 48000, period: int = 64, name: str | None = None,
                 start_timeout: float = 15.0, realtime: bool | None = None):
        self.samplerate = int(samplerate)
        self.period = int(period)
        self.realtime = can_use_realtime() if realtime is None else bool(realtime)
        self._name_lock = None
        if name is None:
            name, self._name_lock = reserve_server_name()
        self.name = name
        self.start_timeout = float(start_timeout)
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- environment --------------------------------------------------------------------

    @property
    def env_vars(self) -> dict[str, str]:
        """The variables that point JACK clients at this server (and only this server)."""
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    @property
    def env(self) -> dict[str, str]:
        """A full environment for subprocesses: ``os.environ`` plus :attr:`env_vars`."""
        env = dict(os.environ)
        env.update(self.env_vars)
        return env

    def log_text(self) -> str:
        """Everything jackd printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, errors="replace") as f:
            return f.read()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> JackServer:
        """Start jackd and wait until it accepts a client. Raises :class:`JackServerError`."""
        jackd = shutil.which("jackd")
        if jackd is None:
            raise JackServerError(
                "jackd not found on PATH: the JACK tests need a JACK server "
                "(install it with `scripts/setup.sh --dev`, which adds the jackd2 package)"
            )
        cmd = [jackd, "--realtime" if self.realtime else "--no-realtime", "-n", self.name,
               "-d", "dummy", "-r", str(self.samplerate), "-p", str(self.period)]
        self._log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)
        env = self.env
        env.pop("JACK_DEFAULT_SERVER", None)  # jackd takes its name from -n
        preexec = _set_parent_death_signal if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=preexec, start_new_session=True)
        _LIVE.add(self)
        try:
            self._wait_ready(cmd)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, cmd):
        import jack

        deadline = time.monotonic() + self.start_timeout
        last_error = "no attempt made"
        # libjack prints "Cannot connect to server socket" for every failed attempt: silence
        # it while polling, restore the default printer afterwards.
        jack.set_error_function(lambda message: None)
        jack.set_info_function(lambda message: None)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise JackServerError(
                        f"jackd exited with code {self.proc.returncode} before accepting "
                        f"clients; command: {' '.join(cmd)}\n--- jackd output ---\n"
                        f"{self.log_text()}"
                    )
                try:
                    client = jack.Client("spikesynth-probe", no_start_server=True,
                                         servername=self.name)
                except jack.JackError as e:
                    last_error = str(e)
                else:
                    try:
                        if client.samplerate != self.samplerate:
                            raise JackServerError(
                                f"server {self.name} runs at {client.samplerate} Hz, "
                                f"asked for {self.samplerate}"
                            )
                    finally:
                        client.close()
                    return
                if time.monotonic() > deadline:
                    raise JackServerError(
                        f"jackd did not accept clients within {self.start_timeout:.0f} s "
                        f"(last error: {last_error}); command: {' '.join(cmd)}\n"
                        f"--- jackd output ---\n{self.log_text()}"
                    )
                time.sleep(0.02)
        finally:
            jack.set_error_function(None)
            jack.set_info_function(None)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop jackd: SIGTERM, wait, then SIGKILL. Safe to call twice."""
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            if proc.returncode not in (0, -signal.SIGTERM):
                # Killed or crashed: jackd did not clean its sockets and semaphores.
                self._remove_leftovers()
        if self._name_lock is not None:
            os.close(self._name_lock)  # releases the name
            self._name_lock = None
        if self._log is not None:
            self._log.close()
            try:
                os.unlink(self._log.name)
            except OSError:
                pass
            self._log = None

    def _remove_leftovers(self):
        for path in (glob.glob(f"/dev/shm/jack_{self.name}_*")
                     + glob.glob(f"/dev/shm/jack_sem.*_{self.name}_*")):
            try:
                os.unlink(path)
            except OSError:
                pass

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        mode = "realtime" if self.realtime else "no-realtime"
        return (f"JackServer({self.name!r}, {self.samplerate} Hz, period {self.period}, "
                f"{mode}, {state})")


@atexit.register
def _jackd_running() -> bool:
    """Whether any jackd process exists on this machine (ours or anyone's)."""
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(comm) as f:
                if f.read().strip() in ("jackd", "jackdbus"):
                    return True
        except OSError:
            continue
    return False


def _clear_stale_registry():
    """Remove JACK's shared-memory registry and leftovers when no JACK server runs at all.

    Every server registers itself in ``/dev/shm/jack-shm-registry``; one that dies uncleanly
    never deregisters, and after a handful of such entries every new jackd fails with "too
    many servers already active". With no jackd process on the machine every entry is stale,
    so clearing them is safe; a running server (a musician's own) is never touched.

    Call it only before this process has used libjack (pytest_sessionstart): libjack maps the
    registry once per process, and a registry replaced under it breaks later clients.
    """
    if _jackd_running():
        return
    for path in (glob.glob("/dev/shm/jack-shm-registry") + glob.glob("/dev/shm/jack-[0-9]*")
                 + glob.glob("/dev/shm/jack_*") + glob.glob("/dev/shm/jack_sem.*")):
        try:
            os.unlink(path)
        except OSError:
            pass


def _stop_all():
    for server in list(_LIVE):
        server.stop()


# Runs in a fresh interpreter so PortAudio initialises with the test server's environment.
_SD_PROBE = r"""
import json, sys, threading, time
import sounddevice as sd

result = {"hostapis": [h["name"] for h in sd.query_hostapis()]}
jack_api = next((i for i, h in enumerate(sd.query_hostapis()) if "JACK" in h["name"]), None)
result["jack_hostapi"] = jack_api
if jack_api is not None:
    h = sd.query_hostapis(jack_api)
    dev = h["default_output_device"]
    result["jack_device"] = dev
    if dev >= 0:
        info = sd.query_devices(dev)
        result["device_name"] = info["name"]
        result["max_output_channels"] = info["max_output_channels"]
        result["default_samplerate"] = info["default_samplerate"]
        blocks = []
        done = threading.Event()

        def callback(outdata, frames, t, status):
            outdata[:] = 0
            blocks.append(frames)
            if len(blocks) >= int(sys.argv[1]):
                done.set()

        with sd.OutputStream(device=dev, channels=2, dtype="float32", callback=callback):
            result["stream_ran"] = done.wait(float(sys.argv[2]))
        result["callbacks"] = len(blocks)
print(json.dumps(result))
"""


def probe_sounddevice(server: JackServer, callbacks: int = 20, timeout: float = 10.0,
                      python: str | None = None) -> dict:
    """Ask a fresh interpreter what sounddevice sees with ``server``'s environment.

    Lists PortAudio's host APIs, finds the JACK one, and runs a short output stream on its
    default device until ``callbacks`` audio callbacks have happened (or ``timeout`` s).

    Returns
    -------
    dict
        ``hostapis`` (names), ``jack_hostapi`` (index or None), ``jack_device``,
        ``device_name``, ``max_output_channels``, ``default_samplerate``, ``stream_ran``,
        ``callbacks``.
    """
    proc = subprocess.run([python or sys.executable, "-c", _SD_PROBE, str(callbacks),
                           str(timeout)], env=server.env, capture_output=True, text=True,
                          timeout=timeout + 30)
    if proc.returncode != 0:
        raise JackServerError(f"sounddevice probe failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_PLAY_COMPILED: set = set()


#: The programs of ``play --ui`` in the browser tests: one patch of each voice model whose
#: controls differ (the page builds them from the schema for any patch). The compiled
#: callback with the UI's probe holds a part for each model of its programs: with every
#: bundled patch (network and listening ones too) it took over 15 minutes of CPU to compile
#: on a slow 2-core machine.
UI_PATCHES = ("default.yaml", "izhikevich_rs.yaml", "lif.yaml")


def ui_folder() -> Path:
    """A new temporary folder holding a copy of :data:`UI_PATCHES` (saving never touches
    the repository)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="spikesynth-ui-"))
    for name in UI_PATCHES:
        shutil.copy(Path(__file__).resolve().parent.parent / "patches" / name, folder / name)
    return folder


def compile_play(patch=None, input_channels: int = 0, samplerate: int = 48000,
                 probe: bool = False) -> None:
    """Compile (or load) in this process what ``spikesynth play PATCH`` compiles (every
    program of its folder, the compiled callback; ``probe``: as ``play --ui``), once per
    process: a ``play`` started afterwards loads it from the cache within its port deadline,
    whatever ran before."""
    from spikesynth.live import LiveSession

    key = (str(patch), input_channels, samplerate, probe)
    if key in _PLAY_COMPILED:
        return
    LiveSession(patch, samplerate=samplerate, midi_in=None).compile_engine(input_channels,
                                                                          probe)
    _PLAY_COMPILED.add(key)
