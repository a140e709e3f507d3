"""The UI without a browser or an audio device: the bridge on a patch file (``spikesynth ui``'s
preview), saving with comments kept, the view message format, and the server's token and
Origin checks."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import websockets

from spikesynth.patch import SCHEMA, PatchError, load_patch, patch_from_dict
from spikesynth.ui.bridge import Bridge, decode_view, encode_view
from spikesynth.ui.server import UIServer

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "patches"


@pytest.fixture
def folder(tmp_path):
    for name in ("default.yaml", "lead.yaml", "half_centre.yaml"):
        shutil.copy(PATCHES / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def bridge(folder):
    b = Bridge.preview(folder / "default.yaml")
    yield b
    b.close()


def schema_message(key, value):
    """What `spikesynth check` says about ``key: value`` (the patch module, not the UI)."""
    raw: dict = {}
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    with pytest.raises(PatchError) as info:
        patch_from_dict(raw)
    return info.value.message


def test_every_setting_has_a_control_with_the_patch_value(bridge):
    controls = {c["key"]: c for c in bridge.controls()}
    patch = load_patch(PATCHES / "default.yaml")
    assert set(controls) == set(patch.values)
    for key, value in patch.values.items():
        assert controls[key]["value"] == value
        spec = SCHEMA[key]
        assert (controls[key]["lo"], controls[key]["hi"], controls[key]["unit"]) == \
            (spec.lo, spec.hi, spec.unit)
    assert controls["spring.frequency_hz"]["curve"] == "log"


def test_set_param_validates_and_undo_restores(bridge):
    before = dict(bridge.patch.values)
    r = bridge.set_param("gain_db", 100)
    assert not r.ok and r.error == schema_message("gain_db", 100) and r.key == "gain_db"
    assert bridge.patch.values == before and not bridge.undo_stack
    assert not bridge.set_param("no.such", 1).ok
    assert bridge.set_param("spring.damping", 0.5).ok
    assert bridge.patch["spring.damping"] == 0.5
    assert bridge.set_param("voices", 8.0).ok and bridge.patch["voices"] == 8
    assert bridge.undo().ok and bridge.undo().ok
    assert bridge.patch.values == before
    assert not bridge.undo().ok


def test_save_keeps_comments_and_order_and_passes_check(bridge, folder):
    path = folder / "default.yaml"
    original = path.read_text()
    assert bridge.set_param("spring.frequency_hz", 2500.0).ok
    assert bridge.set_param("lif.tau_ms", 7.0).ok  # a key the file does not give
    assert bridge.save().ok
    saved = path.read_text()
    comments = [ln.split("#", 1)[1].strip() for ln in original.splitlines() if "#" in ln]
    for c in comments:
        assert c in saved
    keys = [ln.split(":")[0] for ln in original.splitlines() if ln and ln[0].isalpha()]
    assert [ln.split(":")[0] for ln in saved.splitlines() if ln and ln[0].isalpha()][
        :len(keys)] == keys
    reloaded = load_patch(path)
    assert reloaded["spring.frequency_hz"] == 2500.0 and reloaded["lif.tau_ms"] == 7.0
    assert reloaded.values == bridge.patch.values
    assert reloaded.controllers == bridge.patch.controllers
    check = subprocess.run([sys.executable, "-m", "spikesynth.cli", "check", str(path)],
                           capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stderr
    # Save as: only a plain name inside the programs' folder.
    assert bridge.save("mine").ok and (folder / "mine.yaml").exists()
    for bad in ("../evil.yaml", "/tmp/evil.yaml", "sub/evil.yaml", ".."):
        assert not bridge.save(bad).ok
    assert not (folder.parent / "evil.yaml").exists()


def test_midi_learn_maps_the_next_cc(bridge):
    from spikesynth.events import EventRing

    bridge.ring = EventRing(64)  # as the live session's ring; the preview has none
    bridge._ring_seen = 0
    assert bridge.learn("spring.damping").ok
    bridge.ring.push(0, bytes([0xB0, 64, 127]))  # sustain is not learnable
    bridge.ring.push(0, bytes([0xB0, 20, 64]))
    bridge.poll_input()
    assert bridge.learning is None
    mapping = [c for c in bridge.patch.controllers if c.source == 20]
    assert len(mapping) == 1 and mapping[0].param == "spring.damping"
    assert not bridge.learn("voices").ok  # not controllable


def test_view_message_round_trip_and_preview_views(bridge):
    header, arrays = decode_view(encode_view({"type": "view", "x": 1},
                                             {"a": np.arange(3), "b": np.ones((2, 2))}))
    assert header["x"] == 1 and list(arrays["a"]) == [0, 1, 2] and list(arrays["b"]) == [1] * 4
    bridge.play(69, 100, True)
    deadline = time.monotonic() + 120  # the first trace may compile the voice kernels
    while "membrane" not in decode_view(bridge.view_frame())[1]:
        assert time.monotonic() < deadline, decode_view(bridge.view_frame())[0]["error"]
        time.sleep(0.05)
    header, arrays = decode_view(bridge.view_frame())
    assert header["note"] == 69 and header["f0"] == pytest.approx(440.0)
    assert len(arrays["membrane"]) == len(arrays["state"]) > 0
    assert set(np.unique(arrays["state"])) <= {0.0, 1.0, 2.0}
    # The preview's spectrum (the traced voice) peaks at a harmonic of A4.
    peak_hz = np.argmax(arrays["spectrum"]) * header["spectrum_hz"]
    assert abs(peak_hz / 440.0 - round(peak_hz / 440.0)) < 0.05


def test_server_needs_the_token_and_checks_the_origin(bridge):
    server = UIServer(bridge, port=0)
    server.start()
    try:
        base, token = server.url.split("/?token=")

        def status(url):
            try:
                return urllib.request.urlopen(url, timeout=10).status
            except urllib.error.HTTPError as e:
                return e.code

        deadline = 100
        while status(server.url) != 200 and deadline:
            deadline -= 1
        assert status(server.url) == 200
        assert status(base + "/") == 401
        assert status(base + "/api/state") == 401
        assert status(base + "/?token=wrong") == 403
        assert status(base + "/static/app.js") == 401
        assert status(f"{base}/static/app.js?token={token}") == 200

        async def ws(origin, tok=token):
            async with websockets.connect(f"{base.replace('http', 'ws')}/ws?token={tok}",
                                          origin=origin, open_timeout=10) as sock:
                return json.loads(await sock.recv())["type"]

        assert asyncio.run(ws(base)) == "state"
        for origin, tok in (("http://evil.example", token), (base, "wrong")):
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                asyncio.run(ws(origin, tok))
            assert info.value.response.status_code == 403
    finally:
        server.stop()


def test_ui_command_serves_the_preview_and_prints_one_line(folder):
    cmd = [sys.executable, "-m", "spikesynth.cli", "ui", str(folder / "lead.yaml"), "--no-browser"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("UI: http://127.0.0.1:") and "/?token=" in line, line
        base, token = line[4:].split("/?token=")
        with urllib.request.urlopen(f"{base}/api/state?token={token}", timeout=30) as r:
            state = json.loads(r.read())
        assert state["mode"] == "preview" and state["file"] == "lead.yaml"
        assert state["programs"] == ["default.yaml", "half_centre.yaml", "lead.yaml"]
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert "Traceback" not in proc.stderr.read()
