"""Small media servers for the push tests: real HTTP on 127.0.0.1, a thread each.

Each implements the endpoints indexer calls as the servers' documentation gives
them (Jellyfin and Emby's `/Library/Media/Updated` and `/System/Info`, Plex's
`/library/sections` XML and partial `refresh?path=`, Subsonic's token
authentication, Kodi's JSON-RPC, a webhook receiver), checks the token, and
records every request. `stop()` closes the port (a server down: connections
refused) and `start()` opens it again on the same port.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    kind: str  # jellyfin, plex, navidrome, kodi, webhook
    token: str = "secret-token"
    sections: dict[str, str] = field(default_factory=dict)  # Plex: key -> location
    password: str = "pass"
    sleep_s: float = 0.0  # each answer waits this long (a slow server)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._httpd = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                split = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, split.path, dict(urllib.parse.parse_qsl(split.query)),
                            dict(self.headers.items()), self.rfile.read(length))
                with server._lock:
                    server.seen.append(seen)
                if server.sleep_s:
                    time.sleep(server.sleep_s)
                status, body, kind = server.answer(seen)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (its time limit)

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def requests(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if path is None or s.path == path]

    # --- the answers, as each server's documentation gives them

    def answer(self, seen: Seen) -> tuple[int, bytes, str]:
        return getattr(self, f"_{self.kind}")(seen)

    def _jellyfin(self, seen: Seen):
        if seen.headers.get("X-Emby-Token") != self.token:
            return 401, b"", "text/plain"
        if seen.path == "/Library/Media/Updated" and seen.method == "POST":
            return 204, b"", "text/plain"
        if seen.path == "/System/Info":
            return 200, json.dumps({"Version": "10.9.11"}).encode(), "application/json"
        return 404, b"", "text/plain"

    def _plex(self, seen: Seen):
        if seen.headers.get("X-Plex-Token") != self.token:
            return 401, b"<html>Unauthorized</html>", "text/html"
        if seen.path == "/library/sections":
            dirs = "".join(f'<Directory key="{k}" type="artist" title="S{k}">'
                           f'<Location id="{k}" path="{p}"/></Directory>'
                           for k, p in self.sections.items())
            xml = f'<MediaContainer size="{len(self.sections)}">{dirs}</MediaContainer>'
            return 200, xml.encode(), "application/xml"
        parts = seen.path.split("/")
        if seen.path.endswith("/refresh") and parts[3] in self.sections:
            return 200, b"", "text/plain"
        return 404, b"", "text/plain"

    def _navidrome(self, seen: Seen):
        q = seen.query
        good = q.get("t") == hashlib.md5((self.password + q.get("s", "")).encode()).hexdigest()
        reply = {"status": "ok", "version": "1.16.1"} if good else {
            "status": "failed", "error": {"code": 40, "message": "Wrong username or password"}}
        return 200, json.dumps({"subsonic-response": reply}).encode(), "application/json"

    def _kodi(self, seen: Seen):
        call = seen.json()
        result = "pong" if call["method"] == "JSONRPC.Ping" else "OK"
        return 200, json.dumps({"id": call["id"], "jsonrpc": "2.0", "result": result}).encode(), \
            "application/json"

    def _webhook(self, seen: Seen):
        return 200, b"{}", "application/json"
