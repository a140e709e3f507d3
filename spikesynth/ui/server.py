"""The UI's HTTP and websocket server (Starlette on uvicorn): the only module importing them.

Routes (every one needs the session token, as ``?token=`` or the cookie ``/`` sets; none:
401, a wrong one: 403):

* ``GET /`` — the page; ``GET /static/…`` — its modules (plain JS, no build step);
* ``GET /api/state`` — controls, programs, mappings (:meth:`Bridge.state`);
* ``GET /api/status?since=N`` — status and the callback load percentiles since callback N;
* ``POST /api/param`` ``{"path", "value"}`` — one setting (also over the websocket);
* ``WS /ws`` — commands in (JSON), results and state out (JSON), views out (binary, see
  :mod:`spikesynth.ui.bridge`) at :data:`FPS`. The ``Origin`` header must be this server's.

The server runs on its own thread with its own event loop (:class:`UIServer`); slow commands
(a patch change prepares note tables) run on worker threads, serialised by the bridge's lock.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import socket
import threading
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["FPS", "UIServer", "UIServerError"]

FPS = 30
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "spikesynth_token"


class UIServerError(RuntimeError):
    """The server could not start (the port is taken, the host is not an address here)."""


class _TokenGate:
    """ASGI middleware: the token on every request and websocket; websockets' Origin."""

    def __init__(self, app, token: str, origins: set):
        self.app = app
        self.token = token
        self.origins = origins

    def _token_of(self, scope) -> str | None:
        from urllib.parse import parse_qs

        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0]
        for name, value in scope.get("headers", ()):
            if name == b"x-spikesynth-token":
                return value.decode("latin-1")
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == COOKIE:
                        return v
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = self._token_of(scope)
        ok = given is not None and hmac.compare_digest(given.encode(), self.token.encode())
        if scope["type"] == "websocket":
            origin = dict(scope.get("headers", ())).get(b"origin", b"").decode("latin-1")
            if not ok or origin not in self.origins:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})  # -> HTTP 403
                return
            return await self.app(scope, receive, send)
        if not ok:
            code = 401 if given is None else 403
            text = "the UI token is missing" if code == 401 else "wrong UI token"
            return await PlainTextResponse(text, status_code=code)(scope, receive, send)
        return await self.app(scope, receive, send)


def _result(r) -> dict:
    return {"ok": r.ok, "error": r.error, "key": r.key}


class UIServer:
    """Serve the page for ``bridge`` on ``host:port`` (0: any free port) on its own thread.

    Thread: constructed, :meth:`start`-ed and :meth:`stop`-ped on main.
    """

    def __init__(self, bridge, host: str = "127.0.0.1", port: int = 0, token: str | None = None):
        self.bridge = bridge
        self.host = host
        self.token = token or secrets.token_urlsafe(18)
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, int(port)))
            self.sock.listen(64)  # connections wait in the backlog until uvicorn runs
        except OSError as e:
            raise UIServerError(f"cannot serve the UI on {host}:{port}: {e.strerror or e}") \
                from None
        self.port = self.sock.getsockname()[1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.url = f"http://{shown}:{self.port}/?token={self.token}"
        origins = {f"http://{h}:{self.port}" for h in (host, shown, "127.0.0.1", "localhost")}
        self.clients = 0
        self._server = None
        self._thread = None
        self.app = _TokenGate(self._routes(), self.token, origins)

    # -- routes (server thread) ---------------------------------------------------------
    def _routes(self):
        bridge = self.bridge

        async def index(request: Request):
            response = FileResponse(STATIC / "index.html")
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            response.headers["Cache-Control"] = "no-store"
            return response

        async def state(request: Request):
            return JSONResponse(bridge.state())

        async def status(request: Request):
            try:
                since = int(request.query_params.get("since", "0"))
            except ValueError:
                since = 0
            return JSONResponse({"status": bridge.status(), "load": bridge.load_stats(since)})

        async def param(request: Request):
            try:
                body = await request.json()
                path, value = body["path"], body["value"]
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"ok": False, "error": "expected {path, value}"}, 400)
            r = await run_in_threadpool(bridge.set_param, path, value)
            return JSONResponse(_result(r), 200 if r.ok else 422)

        return Starlette(routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/api/status", status),
            Route("/api/param", param, methods=["POST"]),
            WebSocketRoute("/ws", self._socket),
            Mount("/static", StaticFiles(directory=STATIC)),
        ])

    async def _command(self, message: dict) -> dict:
        b = self.bridge
        op = message.get("op")
        if op == "set":
            r = await run_in_threadpool(b.set_param, message.get("path"), message.get("value"))
        elif op == "note":
            r = b.play(message.get("note"), message.get("velocity", 100),
                       bool(message.get("on")))
        elif op == "undo":
            r = await run_in_threadpool(b.undo)
        elif op == "program":
            r = await run_in_threadpool(b.select_program, message.get("index"))
        elif op == "save":
            r = await run_in_threadpool(b.save, message.get("name"))
        elif op == "learn":
            r = b.learn(message.get("path"))
        elif op == "controllers":
            r = await run_in_threadpool(b.set_controllers, message.get("list"))
        elif op == "state":
            return b.state()
        else:
            return {"type": "result", "ok": False, "error": f"unknown op {op!r}"}
        return dict(_result(r), type="result", id=message.get("id"), op=op,
                    path=message.get("path"))

    async def _socket(self, ws: WebSocket):
        await ws.accept()
        self.clients += 1
        b = self.bridge
        sent_version = b.version

        async def views():
            nonlocal sent_version
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            try:
                while True:
                    next_at += 1.0 / FPS
                    await ws.send_bytes(b.view_frame())
                    if b.version != sent_version or b.patch is not b._seen_patch:
                        sent_version, b._seen_patch = b.version, b.patch
                        await ws.send_text(json.dumps(b.state()))
                    await asyncio.sleep(max(next_at - loop.time(), 0.001))
            except (WebSocketDisconnect, RuntimeError, OSError):
                return  # the page went away; the receiving side ends the connection

        b.views_opened()
        sender = None
        try:
            await ws.send_text(json.dumps(b.state()))
            sender = asyncio.create_task(views())
            while True:
                text = await ws.receive_text()
                try:
                    message = json.loads(text)
                    if not isinstance(message, dict):
                        raise ValueError
                except ValueError:
                    await ws.send_text(json.dumps({"type": "result", "ok": False,
                                                   "error": "expected a JSON object"}))
                    continue
                reply = await self._command(message)
                await ws.send_text(json.dumps(reply))
        except WebSocketDisconnect:
            pass
        finally:
            if sender is not None:
                sender.cancel()
            self.clients -= 1
            b.views_closed()

    # -- lifecycle (main) ---------------------------------------------------------------
    def start(self) -> str:
        """Start serving; return the URL (with the token). Thread: main."""
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                access_log=False, ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self.sock]},
                                        name="spikesynth-ui", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving (closes the websockets). Idempotent. Thread: main."""
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(5.0)
            self._server = None
        try:
            self.sock.close()
        except OSError:
            pass

