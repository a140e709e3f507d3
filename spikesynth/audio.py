"""Live audio output: a PortAudio stream (via sounddevice) whose callback renders the synth.

The only module that imports ``sounddevice``, and it does so lazily (:func:`_sounddevice`),
so ``render`` and the tests that do not play live work without PortAudio.

The audio callback: compiled (no GIL), or Python as a fallback
---------------------------------------------------------------
By default PortAudio calls compiled code directly: a numba ``@cfunc`` with PortAudio's
``PaStreamCallback`` signature (:mod:`spikesynth.rtcallback`), opened through sounddevice's
CFFI handles as python-rtmixer does in C. It rebuilds the synth's arrays from a table of
addresses, drains the MIDI ring, renders, switches patches and writes the counters, all
without the GIL: Python on other threads (a long YAML parse, a busy loop) cannot delay it.

Where the compiled callback cannot be built (``NUMBA_DISABLE_JIT``, a monotonic clock that is
not ``clock_gettime``, arrays it cannot address), or with ``callback="python"``, the stream
runs :meth:`AudioHost._callback`: a few Python lines around one compiled ``nogil`` call,
:meth:`spikesynth.engine.Synth.process_ring`. It needs the GIL for those lines, so another
thread that holds the GIL delays it. :attr:`AudioHost.callback_kind` says which runs.

Host time of a block: a frame-counter clock
-------------------------------------------
MIDI messages are stamped with ``time.monotonic_ns()`` when they arrive
(:mod:`spikesynth.midi`) and play at arrival + ``midi_latency_ns``. The engine needs the host
time of each block's first frame, ``block_start_ns``. The callback does not use the time of
its own entry for that (scheduling jitter would become timing jitter); it counts frames::

    block_start_ns = anchor_ns + frames_rendered * 1e9 / samplerate

and keeps ``anchor_ns`` such that a block never starts after the callback that renders it
has begun (``block_start_ns <= entry_ns``), like the lower-bound clock of
:class:`spikesynth.midi.DeltaClock``:

* entry earlier than predicted (the prediction ran ahead): ``anchor`` jumps down at once;
* entry later than predicted by less than ``resync_ns``: ``anchor`` rises by 1/256 of the
  error per block, which follows a slow drift between the sound card and the host clock
  but ignores scheduling jitter;
* entry later by more than ``resync_ns`` (the stream stalled), or later at all in a
  callback flagged with an output underflow (an xrun: cycles were lost, so the frame count
  fell behind): ``anchor`` jumps up, and the next regular callback pulls it back down if
  that was only a late callback.

So consecutive blocks are exactly ``frames / samplerate`` apart, whatever the callback's
jitter, and a message is never scheduled into a block that has already been rendered as long
as ``midi_latency_ns`` exceeds one block plus the MIDI delivery delay (arrival stamp →
visible in the ring: the MIDI thread's polling interval). :func:`default_midi_latency_ns`
picks one block + 3 ms. Timing jitter is then below one sample in steady state; the sound
leaves the sound card the stream's output latency later, which is constant.

When PortAudio calls back several times in a row for one larger hardware buffer, the
clock settles so that the *last* of those blocks starts at the callback time: the earlier
ones lie in the past, which the latency absorbs.

The JACK client is named ``spikesynth`` (:data:`CLIENT_NAME`): PortAudio's
``PaJack_SetClientName`` is called, and PortAudio re-initialised, when sounddevice is first
imported.

Thread: :class:`AudioHost` is created, started and closed on main; the callback runs on the
audio thread (PortAudio's; with JACK, the JACK process thread).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

import numpy as np

__all__ = [
    "AudioDeviceError",
    "AudioHost",
    "AudioUnavailable",
    "default_midi_latency_ns",
    "describe_devices",
    "list_devices",
    "quiet_stderr",
    "resolve_output_device",
]

CLIENT_NAME = "spikesynth"  # the JACK client's name
CALLBACK_KINDS = ("auto", "compiled", "python")
LOAD_HISTORY = 1 << 16  # per-callback loads kept for percentiles (about 87 s at 64/48 kHz)
LEAK_SHIFT = 4  # the clock anchor follows a late callback by error >> LEAK_SHIFT


class AudioUnavailable(RuntimeError):
    """PortAudio (the system library behind sounddevice) or sounddevice is missing."""


class AudioDeviceError(ValueError):
    """No usable output device, an unknown device or host API, or settings it refuses."""


@contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (PortAudio's ALSA/JACK probing noise) inside the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_SD = None
_CLIENT_NAME_BUFFER = None  # PortAudio keeps the pointer: the buffer must stay alive
JACK_CLIENT_NAMED = False  # whether PaJack_SetClientName was available and called


def _name_jack_client(sd) -> None:
    """Name PortAudio's JACK client :data:`CLIENT_NAME` (before Pa_Initialize). Thread: main.

    sounddevice initialises PortAudio when imported, so this terminates it, sets the name and
    initialises again. A PortAudio without JACK support has no ``PaJack_SetClientName``: then
    nothing changes.
    """
    global _CLIENT_NAME_BUFFER, JACK_CLIENT_NAMED
    import ctypes

    try:
        lib = ctypes.CDLL(sd._libname)  # the library sounddevice loaded (the same handle)
        set_name = lib.PaJack_SetClientName
    except (OSError, AttributeError, TypeError):
        return
    set_name.argtypes = [ctypes.c_char_p]
    set_name.restype = ctypes.c_int
    _CLIENT_NAME_BUFFER = ctypes.create_string_buffer(CLIENT_NAME.encode())
    sd._terminate()
    try:
        JACK_CLIENT_NAMED = set_name(_CLIENT_NAME_BUFFER) == 0
    finally:
        sd._initialize()


def _sounddevice():
    """Import sounddevice once (PortAudio initialises here). Thread: main.

    Raises :class:`AudioUnavailable` when PortAudio or sounddevice is missing.
    """
    global _SD
    if _SD is None:
        try:
            with quiet_stderr():
                import sounddevice
        except ImportError as e:
            raise AudioUnavailable(
                "live audio needs the sounddevice package: pip install 'spikesynth[live]' "
                "(or write a file with `spikesynth render`)") from e
        except OSError as e:  # sounddevice raises OSError when libportaudio is missing
            raise AudioUnavailable(
                f"PortAudio is not available ({e}); install it (Debian: apt-get install "
                "libportaudio2) or write a file with `spikesynth render`") from e
        with quiet_stderr():
            _name_jack_client(sounddevice)
        _SD = sounddevice
    return _SD


def list_devices() -> list[dict]:
    """Every audio device PortAudio knows, with its host API. Thread: main.

    Returns
    -------
    list of dict
        ``index``, ``name``, ``hostapi`` (name), ``output_channels``, ``input_channels``,
        ``default_samplerate`` (Hz), ``default_output`` (bool: its host API's default output).
    """
    sd = _sounddevice()
    apis = sd.query_hostapis()
    devices = []
    for info in sd.query_devices():
        api = apis[info["hostapi"]]
        devices.append({
            "index": info["index"],
            "name": info["name"],
            "hostapi": api["name"],
            "output_channels": info["max_output_channels"],
            "input_channels": info["max_input_channels"],
            "default_samplerate": info["default_samplerate"],
            "default_output": api["default_output_device"] == info["index"],
        })
    return devices


def describe_devices(devices=None, outputs_only: bool = True) -> str:
    """A readable listing of :func:`list_devices` (one device a line). Thread: main."""
    devices = list_devices() if devices is None else devices
    rows = [d for d in devices if d["output_channels"] > 0 or not outputs_only]
    if not rows:
        return "  (none)"
    lines = []
    for d in rows:
        mark = "*" if d["default_output"] else " "
        lines.append(f"{mark} {d['index']:>3}: {d['name']} [{d['hostapi']}] "
                     f"{d['output_channels']} out, {d['default_samplerate']:g} Hz")
    return "\n".join(lines)


def _hostapi_index(sd, name: str) -> int:
    apis = sd.query_hostapis()
    low = str(name).strip().lower()
    matches = [i for i, a in enumerate(apis) if low in a["name"].lower()]
    if not matches:
        names = ", ".join(a["name"] for a in apis) or "none"
        raise AudioDeviceError(f"no audio host API matches {name!r}; available: {names}")
    return matches[0]


def check_output_settings(device, samplerate: int) -> None:
    """Raise :class:`AudioDeviceError` if output ``device`` (a PortAudio index, or None: the
    default) refuses ``samplerate`` Hz stereo float32. Thread: main."""
    sd = _sounddevice()
    try:
        sd.check_output_settings(device=device, channels=2, dtype="float32",
                                 samplerate=samplerate)
    except (sd.PortAudioError, ValueError) as e:
        name = sd.query_devices(device)["name"] if device is not None else "default"
        raise AudioDeviceError(
            f"the audio device {name!r} refuses {samplerate} Hz stereo float32 "
            f"output: {e}; its default rate is "
            f"{sd.query_devices(device)['default_samplerate']:g} Hz "
            "(choose it with --samplerate)") from None


def resolve_output_device(device=None, hostapi: str | None = None) -> int:
    """The PortAudio index of the output device to open. Thread: main.

    Parameters
    ----------
    device : str or int, optional
        An index, or a case-insensitive substring of the device name. None: the default
        output device (of ``hostapi`` when given).
    hostapi : str, optional
        Substring of a host API name (``JACK``, ``ALSA``, ``PulseAudio``): only its devices.

    Raises
    ------
    AudioDeviceError
        No output device at all, or none matching; the message lists what exists.
    """
    sd = _sounddevice()
    devices = list_devices()
    outputs = [d for d in devices if d["output_channels"] > 0]
    api_index = None
    if hostapi is not None:
        api_index = _hostapi_index(sd, hostapi)
        api_name = sd.query_hostapis(api_index)["name"]
        outputs = [d for d in outputs if d["hostapi"] == api_name]
    if not outputs:
        where = f" on host API {hostapi!r}" if hostapi else ""
        raise AudioDeviceError(
            f"no audio output device{where}; devices:\n{describe_devices(devices, False)}\n"
            "(to make sound without one, write a file: spikesynth render PATCH -o out.wav)")
    if device is None or str(device).strip() == "":
        if api_index is not None:
            index = sd.query_hostapis(api_index)["default_output_device"]
        else:
            index = sd.default.device[1]
            if index is None or index < 0:
                index = sd.query_hostapis(sd.default.hostapi)["default_output_device"]
        if index is not None and any(d["index"] == index for d in outputs):
            return int(index)
        return int(outputs[0]["index"])
    text = str(device).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if any(d["index"] == index for d in outputs):
            return index
        raise AudioDeviceError(f"no audio output device {index}; output devices:\n"
                               f"{describe_devices(outputs)}")
    matches = [d for d in outputs if text.lower() in d["name"].lower()]
    if not matches:
        raise AudioDeviceError(f"no audio output device matches {text!r}; output devices:\n"
                               f"{describe_devices(outputs)}")
    return int(matches[0]["index"])


def resolve_input_device(device, hostapi: str | None = None) -> int:
    """The PortAudio index of the input device for ``play --input`` (as
    :func:`resolve_output_device`, over devices with inputs; ``default``: the default input).

    Raises :class:`AudioDeviceError` naming what exists. Thread: main.
    """
    sd = _sounddevice()
    devices = list_devices()
    inputs = [d for d in devices if d["input_channels"] > 0]
    if hostapi is not None:
        api_name = sd.query_hostapis(_hostapi_index(sd, hostapi))["name"]
        inputs = [d for d in inputs if d["hostapi"] == api_name]
    listing = "\n".join(f"  {d['index']:>3}: {d['name']} [{d['hostapi']}] "
                        f"{d['input_channels']} in" for d in inputs) or "  (none)"
    if not inputs:
        raise AudioDeviceError(f"no audio input device{' on ' + hostapi if hostapi else ''}; "
                               "process a file instead: spikesynth process PATCH IN -o OUT")
    text = str(device).strip()
    if text.lower() in ("", "default"):
        index = (sd.query_hostapis(_hostapi_index(sd, hostapi))["default_input_device"]
                 if hostapi is not None else sd.default.device[0])
        if index is not None and any(d["index"] == index for d in inputs):
            return int(index)
        return int(inputs[0]["index"])
    if text.lstrip("-").isdigit() and any(d["index"] == int(text) for d in inputs):
        return int(text)
    matches = [d for d in inputs if text.lower() in d["name"].lower()]
    if not matches:
        raise AudioDeviceError(f"no audio input device matches {text!r}; input devices:\n"
                               f"{listing}")
    return int(matches[0]["index"])


def default_midi_latency_ns(samplerate: float, blocksize: int) -> int:
    """One block plus 3 ms: the smallest MIDI scheduling latency that never plays late.

    See the module docstring; 3 ms covers the MIDI thread's polling interval (1 ms) and its
    scheduling delay. ``blocksize`` 0 (PortAudio chooses) counts as 1024 frames.
    """
    frames = blocksize if blocksize > 0 else 1024
    return int(frames * 1e9 / samplerate) + 3_000_000


class AudioHost:
    """An output stream that renders ``synth`` from ``ring`` in its callback.

    Thread: constructed, :meth:`start`-ed and :meth:`close`-d on main; counters are written
    by the audio thread and may be read from any thread (:meth:`stats`).

    Parameters
    ----------
    synth : spikesynth.engine.Synth
        Prepared with ``max_block`` at least ``blocksize`` (warm it up before :meth:`start`).
    ring : spikesynth.events.EventRing
        MIDI from the MIDI thread(s); this host is its single consumer.
    samplerate : int
        Hz; the device must accept it (JACK: the server's rate).
    blocksize : int
        Frames per callback; 0 lets PortAudio choose (and vary) it.
    latency : {"low", "high"} or float
        PortAudio's suggested output latency (seconds when a number).
    device : int
        PortAudio device index (see :func:`resolve_output_device`).
    input_device : int, optional
        PortAudio index of an input device: the stream is duplex, and its first input
        channel is the synth's ``audio_in`` (what a patch with ``listen:`` hears), rendered in
        the same callback (input block *k* shapes output block *k*), compiled or Python.
    output_tap : spikesynth.ui.tap.OutputTap, optional
        Each output block is copied into its ring (the UI's spectrum and meters), by the
        compiled callback (:meth:`spikesynth.rtcallback.CompiledCallback.attach_tap`) or the
        Python one.
    probe : bool
        The compiled callback's variant with the live probe (``play --ui``; see
        :class:`spikesynth.rtprobe.LiveProbe`, :attr:`probe`); the Python callback has none.
    midi_latency_ns : int, optional
        Arrival-to-sound scheduling latency; :func:`default_midi_latency_ns` by default.
    resync_ns : int, optional
        A callback this much later than the frame clock predicts re-anchors the clock
        (default: 4 blocks, at least 10 ms).
    callback : {"auto", "compiled", "python"}
        ``auto``: the compiled, GIL-free callback, or the Python one where it cannot be built
        (:attr:`callback_note` says why); ``compiled``: that one or an error.

    Raises
    ------
    AudioDeviceError
        The device refuses the settings (sample rate, channels, latency).
    """

    def __init__(self, synth, ring, *, samplerate: int = 48000, blocksize: int = 64,
                 latency="low", device: int | None = None, midi_latency_ns: int | None = None,
                 resync_ns: int | None = None, callback: str = "auto",
                 input_device: int | None = None, output_tap=None, probe: bool = False):
        sd = _sounddevice()
        if callback not in CALLBACK_KINDS:
            raise AudioDeviceError(f"callback must be one of {', '.join(CALLBACK_KINDS)}")
        self.synth = synth
        self.ring = ring
        self.samplerate = int(samplerate)
        self.blocksize = int(blocksize)
        self.device = device
        if self.blocksize < 0:
            raise AudioDeviceError("blocksize must be 0 (PortAudio chooses) or positive")
        if self.blocksize > synth.max_block:
            raise AudioDeviceError(f"blocksize {blocksize} exceeds the synth's max_block "
                                   f"{synth.max_block}")
        self.midi_latency_ns = (default_midi_latency_ns(samplerate, blocksize)
                                if midi_latency_ns is None else int(midi_latency_ns))
        block_ns = int((self.blocksize or 1024) * 1e9 / self.samplerate)
        self.resync_ns = max(4 * block_ns, 10_000_000) if resync_ns is None else int(resync_ns)
        check_output_settings(device, self.samplerate)

        # -- counters, written by the audio thread only ----------------------------------
        self.callbacks = 0
        self.underflows = 0  # PortAudio's output-underflow flag (xruns)
        self.overflows = 0
        self.oversize = 0  # blocks larger than the synth's max_block: rendered as silence
        self.overruns = 0  # callbacks that took longer than their block's duration
        self.resyncs = 0  # frame clock re-anchored after a stall or an xrun
        self.frames = 0  # frames rendered (the frame clock)
        self.load_sum_ppm = 0  # sum of per-callback loads (parts per million of the block)
        self.load_max_ppm = 0
        #: Per-callback load (callback duration / block duration, ppm), a ring of the last
        #: LOAD_HISTORY callbacks (index ``callbacks & (LOAD_HISTORY - 1)``).
        self.loads_ppm = np.zeros(LOAD_HISTORY, dtype=np.int64)
        self._anchor_ns = 1 << 62  # the first callback's entry sets it (it jumps down)
        self._max_block = int(synth.max_block)
        self._perf = time.perf_counter_ns
        self._clock = time.monotonic_ns

        #: The compiled callback (:class:`spikesynth.rtengine.EngineCallback`), or None.
        self.rt = None
        #: Why the Python callback runs ("" when the compiled one does).
        self.callback_note = ""
        self.output_tap = output_tap
        if callback != "python":
            from . import rtengine

            try:
                self.rt = rtengine.EngineCallback(
                    synth, ring, samplerate=self.samplerate, latency_ns=self.midi_latency_ns,
                    resync_ns=self.resync_ns, input_channels=0 if input_device is None else 1,
                    probe=probe)
                if output_tap is not None:
                    self.rt.rt.attach_tap(output_tap.ring, output_tap.header)
            except Exception as e:  # noqa: BLE001 - numba errors: fall back, say why
                if callback == "compiled":
                    raise AudioDeviceError(f"the compiled audio callback is not available: "
                                           f"{e}") from None
                self.callback_note = str(e).splitlines()[0] if str(e) else type(e).__name__
        else:
            self.callback_note = "requested"
        if output_tap is not None and self.rt is None:
            output_tap.prepare()

        self._stream = None
        self._indata = None  # the duplex callback's input block (None: output only)
        self.input_overflows = 0
        if input_device is not None:
            self._open_duplex(sd, input_device, latency)
            return
        try:
            if self.rt is not None:
                self._stream = sd._StreamBase(
                    kind="output", samplerate=self.samplerate, blocksize=self.blocksize,
                    device=device, channels=2, dtype="float32", latency=latency,
                    callback=sd._ffi.cast("PaStreamCallback *", self.rt.address),
                    userdata=sd._ffi.cast("void *", self.rt.userdata), wrap_callback=None)
            else:
                self._stream = sd.OutputStream(
                    samplerate=self.samplerate, blocksize=self.blocksize, device=device,
                    channels=2, dtype="float32", latency=latency, callback=self._callback)
        except sd.PortAudioError as e:
            raise AudioDeviceError(f"cannot open the audio output: {e}") from None

    def _open_duplex(self, sd, input_device, latency):
        """A duplex stream: 1 input channel (the synth's audio_in), 2 outputs. Thread: main."""
        try:
            sd.check_input_settings(device=input_device, channels=1, dtype="float32",
                                    samplerate=self.samplerate)
            if self.rt is not None:
                self._stream = sd._StreamBase(
                    kind="duplex", samplerate=self.samplerate, blocksize=self.blocksize,
                    device=(input_device, self.device), channels=(1, 2), dtype="float32",
                    latency=latency,
                    callback=sd._ffi.cast("PaStreamCallback *", self.rt.address),
                    userdata=sd._ffi.cast("void *", self.rt.userdata), wrap_callback=None)
                return
            self._stream = sd.Stream(
                samplerate=self.samplerate, blocksize=self.blocksize,
                device=(input_device, self.device), channels=(1, 2), dtype="float32",
                latency=latency, callback=self._duplex_callback)
        except (sd.PortAudioError, ValueError) as e:
            raise AudioDeviceError(f"cannot open the duplex stream (input device "
                                   f"{input_device}): {e}") from None

    def _duplex_callback(self, indata, outdata, frames, time_info, status):
        """The duplex stream's callback: the input block, then :meth:`_callback`. Thread: audio."""
        if status and status.input_overflow:
            self.input_overflows += 1
        self._indata = indata
        self._callback(outdata, frames, time_info, status)

    @property
    def probe(self):
        """The live probe's reader (:class:`spikesynth.rtprobe.LiveProbe`), or None."""
        return self.rt.probe if self.rt is not None else None

    @property
    def callback_kind(self) -> str:
        """``"compiled"`` (GIL-free) or ``"python"``: which callback the stream runs."""
        return "compiled" if self.rt is not None else "python"

    def use_patch(self, prepared) -> bool:
        """Switch to a prepared patch (``Synth.prepare_patch``); the audio thread retunes or
        fades as ``Synth.use_patch`` describes. Thread: main or MIDI (callers serialise).

        Returns False when the compiled callback did not take the switch (stream stopped).
        """
        if self.rt is None:
            self.synth.use_patch(prepared)
            return True
        try:
            self.rt.use_patch(prepared)
        except (TimeoutError, ValueError):  # stopped, or a voice model the stream lacks
            return False
        self.synth.follow(prepared)  # parameters are checked against what plays now
        return True

    def set_program(self, number: int, prepared) -> bool:
        """Program ``number`` is now ``prepared`` (a hot reload): a program change to it plays
        it, and if it plays now the voices retune or fade into it. The synth's own programs
        (:meth:`Synth.set_programs`) are the caller's. Thread: main or reload (callers
        serialise). Returns False when the compiled callback did not take it."""
        if self.rt is None:
            if self.synth.program_number == number:
                self.synth.use_patch(prepared)
            return True
        try:
            self.rt.set_program(number, prepared)
        except (TimeoutError, ValueError):  # stopped, or a voice model the stream lacks
            return False
        return True

    def follow(self, prepared) -> None:
        """The synth's parameter view (OSC and UI parameters are checked against it) follows
        ``prepared``, the program that events sent from now on meet (a program change was
        just sent). No effect on sound; none with the Python callback, where the synth is
        what plays. Thread: MIDI, main or reload (callers serialise)."""
        if self.rt is not None:
            self.synth.follow(prepared)

    @property
    def program(self) -> int:
        """The program playing: the engine switches at each program change's sample offset.
        Thread: any."""
        return self.rt.playing if self.rt is not None else int(self.synth.program_number)

    @property
    def patch(self):
        """The :class:`~spikesynth.patch.Patch` being played. Thread: main."""
        return self.rt.patch if self.rt is not None else self.synth.patch

    # -- audio thread -------------------------------------------------------------------
    def _callback(self, outdata, frames, time_info, status):
        """Render one block into PortAudio's buffer. Thread: audio. Never raises."""
        entry = self._perf()
        now = self._clock()
        lost = False
        if status:
            if status.output_underflow:
                self.underflows += 1
                lost = True
            if status.output_overflow:
                self.overflows += 1
        start = self._anchor_ns + self.frames * 1_000_000_000 // self.samplerate
        error = now - start
        if error < 0 or error > self.resync_ns or (lost and error > 0):
            self._anchor_ns += error
            start = now
            if error > 0:
                self.resyncs += 1
        else:
            self._anchor_ns += error >> LEAK_SHIFT
        if frames <= self._max_block:
            self.synth.process_ring(outdata, self.ring, start, self.midi_latency_ns,
                                    self._indata)
        else:
            outdata.fill(0.0)
            self.oversize += 1
        if self.output_tap is not None:
            self.output_tap.write(outdata)
        self.frames += frames
        if frames:
            load = (self._perf() - entry) * self.samplerate // (frames * 1000)
            self.loads_ppm[self.callbacks & (LOAD_HISTORY - 1)] = load
            self.load_sum_ppm += load
            if load > self.load_max_ppm:
                self.load_max_ppm = load
            if load > 1_000_000:
                self.overruns += 1
        self.callbacks += 1

    # -- main thread --------------------------------------------------------------------
    @property
    def stream(self):
        """The sounddevice OutputStream (None once closed)."""
        return self._stream

    def start(self) -> None:
        """Start the stream (callbacks begin). Thread: main."""
        sd = _sounddevice()
        try:
            self._stream.start()
        except sd.PortAudioError as e:
            raise AudioDeviceError(f"cannot start the audio output: {e}") from None

    def close(self) -> None:
        """Stop and close the stream; waits for the last callback. Idempotent. Thread: main."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    @property
    def output_latency(self) -> float:
        """The stream's reported output latency in seconds (0 when closed)."""
        if self._stream is None:
            return 0.0
        latency = self._stream.latency
        return float(latency[1] if isinstance(latency, tuple) else latency)

    @property
    def input_latency(self) -> float:
        """The duplex stream's reported input latency in seconds (0: none or closed)."""
        latency = self._stream.latency if self._stream is not None else 0.0
        return float(latency[0]) if isinstance(latency, tuple) else 0.0

    def loads(self) -> np.ndarray:
        """Recent per-callback loads as fractions of the block duration (a copy). Thread: any."""
        if self.rt is not None:
            return self.rt.loads()
        n = min(self.callbacks, LOAD_HISTORY)
        return self.loads_ppm[:n].astype(np.float64) * 1e-6

    def loads_since(self, since: int) -> tuple[int, np.ndarray]:
        """``(callbacks, loads)``: the count of callbacks so far and the loads (fractions of
        the block) of callbacks number ``since`` on, as far as the history reaches (a copy).
        Thread: any (reads only)."""
        if self.rt is not None:
            t = self.rt.rt.table
            n = int(self.rt.stats()["callbacks"])
            ring = t[self.rt.rt.loads_base:self.rt.rt.loads_base + LOAD_HISTORY]
        else:
            n = int(self.callbacks)
            ring = self.loads_ppm
        since = max(int(since), n - len(ring) + 1, 0)
        idx = np.arange(since, n) & (len(ring) - 1)
        return n, ring[idx].astype(np.float64) * 1e-6

    def stats(self) -> dict:
        """Counters for the status line, tests and benchmarks. Thread: any (reads only)."""
        if self.rt is not None:
            s = self.rt.stats()
            s["callback"] = "compiled"
            return s
        n = self.callbacks
        return {
            "callback": "python",
            "faults": self.synth.faults,
            "callbacks": n,
            "xruns": self.underflows,
            "overflows": self.overflows,
            "input_overflows": self.input_overflows,
            "oversize_blocks": self.oversize,
            "overruns": self.overruns,
            "clock_resyncs": self.resyncs,
            "frames": self.frames,
            "load_mean": self.load_sum_ppm / n * 1e-6 if n else 0.0,
            "load_max": self.load_max_ppm * 1e-6,
        }

    def __enter__(self) -> AudioHost:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
