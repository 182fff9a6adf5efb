"""One small adapter per kind of target: how a batch of changes becomes requests.

An adapter turns the ready changes of a round (their paths already as the media
server sees them) and the folders they touched into `Request`s, which push.py
sends in order and retries; and checks its target for `indexer notify test`.
It knows the wire format and nothing of cursors, threads or retries. Every
HTTP call has a time limit; proxies from the environment are not used (media
servers are on the local network). Tokens go in headers, never in a message.

- jellyfin, emby: `POST /Library/Media/Updated` with the folders, `X-Emby-Token`
- plex: `GET /library/sections/{key}/refresh?path=<folder>` per folder, the section
  found from `GET /library/sections`; `X-Plex-Token`
- kodi: JSON-RPC `AudioLibrary.Scan` / `VideoLibrary.Scan` per folder, by kind
- navidrome: Subsonic `startScan`, at most once per `min_interval_s`
- webhook: `POST {"changes": [...]}`, signed with `secret` when set
- command: the same JSON on the standard input of `command`, no shell
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .push_config import Target

if TYPE_CHECKING:
    from .config import Config, PushConfig
    from .push import Change, Folder

log = logging.getLogger(__name__)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TargetError(Exception):
    """A target refused or did not answer; `str()` is one line, without secrets."""


@dataclass(frozen=True)
class Request:
    what: str  # for the log and status: "POST /Library/Media/Updated (12 folders)"
    send: Callable[[], None]


@dataclass(frozen=True)
class Check:
    status: str  # "ok", "fail"
    message: str
    fix: str = ""


def http(method: str, url: str, timeout: float, *, headers: dict | None = None,
         body: bytes | None = None) -> bytes:
    """The body of the answer; TargetError for an error status, no answer in time, ..."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    where = urllib.parse.urlsplit(url).netloc
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return answer.read()
    except urllib.error.HTTPError as error:
        raise TargetError(f"{where} answered HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise TargetError(f"cannot reach {where}: {error.reason}") from None
    except TimeoutError:
        raise TargetError(f"{where} did not answer within {timeout:g} s") from None
    except OSError as error:  # reset, refused mid-way, a broken answer
        raise TargetError(f"{where}: {type(error).__name__}: {error}") from None


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Adapter:
    def __init__(self, target: Target, settings: "PushConfig", roots: tuple[str, ...]):
        self.target, self.settings, self.roots = target, settings, roots
        self.timeout = target.timeout_s or settings.timeout_s

    def requests(self, changes: list["Change"], folders: list["Folder"]) -> list[Request]:
        raise NotImplementedError

    def hold_s(self) -> float:
        """How long to wait before the next delivery (0: none)."""
        return 0.0

    def check(self) -> list[Check]:
        raise NotImplementedError

    def _call(self, method: str, path: str, **extra) -> bytes:
        return http(method, self.target.url + path, self.timeout, **extra)


class Jellyfin(Adapter):
    """Jellyfin and Emby: the same API for this (Jellyfin began as a fork of Emby)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.headers = {"X-Emby-Token": self.target.token_value()}

    def requests(self, changes, folders):
        updates = [{"Path": f.path, "UpdateType": f.how} for f in folders]
        return [self._post(part) for part in chunks(updates, self.settings.batch_size)]

    def _post(self, updates: list[dict]) -> Request:
        body = json.dumps({"Updates": updates}).encode()
        headers = {**self.headers, "Content-Type": "application/json"}
        return Request(f"POST /Library/Media/Updated ({len(updates)} folders)",
                       lambda: self._call("POST", "/Library/Media/Updated", headers=headers,
                                          body=body) and None)

    def check(self):
        try:
            info = json.loads(self._call("GET", "/System/Info", headers=self.headers) or b"{}")
        except TargetError as error:
            return [Check("fail", str(error), _token_fix(self.target, "an API key: Dashboard "
                                                         "> API Keys"))]
        version = info.get("Version", "?") if isinstance(info, dict) else "?"
        return [Check("ok", f"{self.target.type} {version} takes the token")]


class Plex(Adapter):
    """One partial scan per folder, in the section whose location holds it."""

    SECTIONS_AGAIN_S = 60.0  # an unknown path re-reads the sections, at most this often

    def __init__(self, *args):
        super().__init__(*args)
        self.headers = {"X-Plex-Token": self.target.token_value(), "Accept": "application/xml"}
        self._sections: list[tuple[str, str]] = []  # (location, key), longest location first
        self._read_at = float("-inf")
        self._told: set[str] = set()

    def sections(self, fresh: bool = False) -> list[tuple[str, str]]:
        if fresh or time.monotonic() - self._read_at > self.SECTIONS_AGAIN_S:
            try:
                xml = ElementTree.fromstring(self._call("GET", "/library/sections",
                                                        headers=self.headers))
            except ElementTree.ParseError:
                raise TargetError("GET /library/sections did not answer XML: is url "
                                  "Plex's address, e.g. http://127.0.0.1:32400?") from None
            found = [(loc.get("path", "").rstrip("/") or "/", d.get("key", ""))
                     for d in xml.iter("Directory") for loc in d.iter("Location")]
            self._sections = sorted(found, key=lambda s: -len(s[0]))
            self._read_at = time.monotonic()
        return self._sections

    def section_of(self, path: str, sections: list[tuple[str, str]]) -> str | None:
        return next((key for location, key in sections
                     if path == location or path.startswith(location.rstrip("/") + "/")), None)

    def requests(self, changes, folders):
        sections = self.sections()
        if any(self.section_of(f.scan, sections) is None for f in folders):
            sections = self.sections(fresh=True)  # a library added since
        found, out = set(), []
        for folder in folders:
            key = self.section_of(folder.scan, sections)
            if key is None:
                self._tell_once(folder.scan)
            elif (key, folder.scan) not in found:
                found.add((key, folder.scan))
                out.append(self._refresh(key, folder.scan))
        return out

    def _refresh(self, key: str, path: str) -> Request:
        query = urllib.parse.urlencode({"path": path})
        return Request(f"GET /library/sections/{key}/refresh", lambda: self._call(
            "GET", f"/library/sections/{key}/refresh?{query}", headers=self.headers) and None)

    def _tell_once(self, path: str) -> None:
        if path not in self._told:
            self._told.add(path)
            log.warning("push to %s: %s is in no Plex library: not sent (add it to a library, "
                        "or correct rewrite)", self.target.name, path)

    def check(self):
        try:
            sections = self.sections(fresh=True)
        except TargetError as error:
            return [Check("fail", str(error), _token_fix(self.target, "X-Plex-Token: see "
                                                         "Plex's 'Finding an authentication token'"))]
        from .push import rewritten
        locations = f"{len(sections)} library location" + "s" * (len(sections) != 1)
        out = [Check("ok", f"token taken; {locations}")]
        for root in self.roots:
            seen = rewritten(root, self.target.rewrite)
            if self.section_of(seen, sections) is None:
                out.append(Check("fail", f"root {root} (in Plex {seen}) is in no Plex library",
                                 "add the folder to a Plex library, or set rewrite to the path "
                                 "Plex sees"))
        return out


class Kodi(Adapter):
    METHODS = {"audio": "AudioLibrary.Scan", "video": "VideoLibrary.Scan"}

    def requests(self, changes, folders):
        out, done = [], set()
        for folder in folders:
            for kind in sorted(folder.kinds & set(self.METHODS)):
                if (kind, folder.scan) not in done:
                    done.add((kind, folder.scan))
                    out.append(self._rpc_request(self.METHODS[kind],
                                                 {"directory": folder.scan.rstrip("/") + "/"}))
        return out

    def _rpc_request(self, method: str, params: dict) -> Request:
        return Request(f"{method} {params.get('directory', '')}", lambda: self.rpc(method, params)
                       and None)

    def rpc(self, method: str, params: dict | None = None) -> object:
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params or {},
                           "id": 1}).encode()
        headers = {"Content-Type": "application/json"}
        if self.target.user:
            import base64
            pair = f"{self.target.user}:{self.target.password_value()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        answer = json.loads(self._call("POST", "/jsonrpc", headers=headers, body=body))
        if "error" in answer:
            raise TargetError(f"Kodi: {method}: {answer['error'].get('message', answer['error'])}")
        return answer.get("result")

    def check(self):
        try:
            return [Check("ok", f"JSONRPC.Ping: {self.rpc('JSONRPC.Ping')}")]
        except (TargetError, ValueError) as error:
            return [Check("fail", str(error), "enable Settings > Services > Control > Allow "
                          "remote control via HTTP; check url, user and password")]


class Navidrome(Adapter):
    """Subsonic API: no scan of a path, so one whole scan, at most once per min_interval_s."""

    def __init__(self, *args):
        super().__init__(*args)
        self._password = self.target.password_value()
        self._last = float("-inf")

    def hold_s(self) -> float:
        return max(0.0, self._last + self.target.min_interval_s - time.monotonic())

    def requests(self, changes, folders):
        return [Request("startScan", self._scan)] if folders else []

    def _scan(self) -> None:
        self.subsonic("startScan")
        self._last = time.monotonic()

    def subsonic(self, method: str) -> dict:
        salt = secrets.token_hex(8)
        query = urllib.parse.urlencode({
            "u": self.target.user, "s": salt, "v": "1.16.1", "c": "indexer", "f": "json",
            "t": hashlib.md5((self._password + salt).encode()).hexdigest()})
        answer = json.loads(self._call("GET", f"/rest/{method}?{query}"))
        reply = answer.get("subsonic-response", {})
        if reply.get("status") != "ok":
            error = reply.get("error", {})
            raise TargetError(f"Navidrome: {method}: {error.get('message', 'failed')}")
        return reply

    def check(self):
        try:
            self.subsonic("ping")
        except (TargetError, ValueError) as error:
            return [Check("fail", str(error), "check url, user and password (or password_file)")]
        return [Check("ok", "ping answered: user and password taken")]


class Webhook(Adapter):
    def requests(self, changes, folders):
        rows = [c.row() for c in changes]
        return [self._post(part) for part in chunks(rows, self.settings.batch_size)]

    def body_headers(self, rows: list[dict]) -> tuple[bytes, dict]:
        body = json.dumps({"changes": rows}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.target.secret:
            digest = hmac.new(self.target.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Indexer-Signature"] = f"sha256={digest}"
        return body, headers

    def _post(self, rows: list[dict]) -> Request:
        body, headers = self.body_headers(rows)
        return Request(f"POST ({len(rows)} changes)", lambda: http(
            "POST", self.target.url, self.timeout, headers=headers, body=body) and None)

    def check(self):
        body, headers = self.body_headers([])
        try:
            http("POST", self.target.url, self.timeout, headers=headers, body=body)
        except TargetError as error:
            return [Check("fail", str(error), "check url, and that the receiver takes a POST "
                          'of {"changes": []}')]
        return [Check("ok", 'a test POST of {"changes": []} was taken')]


class Command(Adapter):
    def requests(self, changes, folders):
        rows = [c.row() for c in changes]
        return [self._run_request(part) for part in chunks(rows, self.settings.batch_size)]

    def _run_request(self, rows: list[dict]) -> Request:
        body = json.dumps({"changes": rows}, ensure_ascii=False).encode()
        return Request(f"{self.target.command[0]} ({len(rows)} changes)", lambda: self.run(body))

    def run(self, body: bytes) -> None:
        try:
            done = subprocess.run(list(self.target.command), input=body, capture_output=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TargetError(f"did not end within {self.timeout:g} s") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise TargetError(f"exit status {done.returncode}: {said[0][:200]}")

    def check(self):
        try:
            self.run(b'{"changes": []}')
        except (TargetError, OSError) as error:
            return [Check("fail", str(error), 'check command: it is run with {"changes": []} '
                          "on its standard input and must exit 0")]
        return [Check("ok", 'ran with {"changes": []} and exited 0')]


ADAPTERS = {"jellyfin": Jellyfin, "emby": Jellyfin, "plex": Plex, "kodi": Kodi,
            "navidrome": Navidrome, "webhook": Webhook, "command": Command}


def _token_fix(target: Target, where: str) -> str:
    given = f"token_file {target.token_file}" if target.token_file else "token"
    return f"check url and {given} ({where})"


def adapter_for(target: Target, settings: "PushConfig", config: "Config") -> Adapter:
    """The target's adapter; OSError if its token or password file cannot be read."""
    return ADAPTERS[target.type](target, settings, config.library.roots)
