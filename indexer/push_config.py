"""The `[[notify]]` tables: the media servers and hooks told of each change.

Each table is one `Target`, checked once when the configuration loads, like
every other key: a mistake is one line naming it, `notify[2].type: ...` (the
first table is `notify[1]`). Secrets are not read here: `token_file` and
`password_file` are read by the service when it starts delivering, so a user
who may not read them (`indexer status` run by someone else) still loads the
configuration. Secrets never appear in `repr()`, logs or status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

KINDS = ("audio", "video", "image", "other")
TYPES = ("jellyfin", "emby", "plex", "navidrome", "kodi", "webhook", "command")
KEYS = ("name", "type", "url", "token", "token_file", "rewrite", "kinds", "secret", "command",
        "user", "password", "password_file", "min_interval_s", "timeout_s")
# what each type needs besides name and type; (a, b) means one of them
NEEDS: dict[str, tuple[Any, ...]] = {
    "jellyfin": ("url", ("token", "token_file")), "emby": ("url", ("token", "token_file")),
    "plex": ("url", ("token", "token_file")),
    "navidrome": ("url", "user", ("password", "password_file")),
    "kodi": ("url",), "webhook": ("url",), "command": ("command",),
}


@dataclass(frozen=True)
class Target:
    name: str
    type: str
    url: str = ""
    token: str = field(default="", repr=False)
    token_file: str = ""
    rewrite: tuple[tuple[str, str], ...] = ()
    kinds: tuple[str, ...] = KINDS
    secret: str = field(default="", repr=False)
    command: tuple[str, ...] = ()
    user: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    min_interval_s: float = 60.0
    timeout_s: float | None = None  # None: push.timeout_s

    def token_value(self) -> str:
        """The token, read from `token_file` now if that is how it is given."""
        return self.token or _secret_file(self.token_file, "token_file")

    def password_value(self) -> str:
        return self.password or _secret_file(self.password_file, "password_file")


@dataclass(frozen=True)
class PushConfig:
    """The [push] keys (config.py checks them) and the [[notify]] targets."""
    delay_s: float = 2.0
    tags_wait_s: float = 30.0
    backoff_max_s: float = 300.0
    batch_size: int = 500
    timeout_s: float = 10.0
    targets: tuple[Target, ...] = ()


def _secret_file(path: str, key: str) -> str:
    """A relative path is under $CREDENTIALS_DIRECTORY (systemd's LoadCredential=)."""
    if not path:
        return ""
    if not os.path.isabs(path) and os.environ.get("CREDENTIALS_DIRECTORY"):
        path = os.path.join(os.environ["CREDENTIALS_DIRECTORY"], path)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise OSError(f"cannot read {key} {path}: {error.strerror}") from None


def targets(value: Any) -> tuple[Target, ...]:
    """The `[[notify]]` array, checked; ValueError("notify[N].key: why") on a mistake."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ValueError("notify: must be an array of tables, written [[notify]]")
    found = tuple(_target(i + 1, table) for i, table in enumerate(value))
    names = [t.name for t in found]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"notify[{i + 1}].name: {name!r} is used twice; names must be unique")
    return found


def _target(index: int, table: dict[str, Any]) -> Target:
    where = f"notify[{index}]"
    for key in table:
        if key not in KEYS:
            raise ValueError(f"{where}.{key}: unknown key (known: {', '.join(KEYS)})")
    values = {key: _check(where, key, table[key]) for key in table}
    for key in ("name", "type"):
        if key not in values:
            raise ValueError(f"{where}.{key}: missing; every [[notify]] needs a name and a type")
    for need in NEEDS[values["type"]]:
        either = need if isinstance(need, tuple) else (need,)
        if not any(values.get(k) for k in either):
            raise ValueError(f"{where}.{either[0]}: missing; type {values['type']!r} needs "
                             + " or ".join(either))
    return Target(**values)


def _check(where: str, key: str, value: Any) -> Any:
    try:
        return CHECKS.get(key, _text)(value)
    except ValueError as error:
        raise ValueError(f"{where}.{key}: {error}, got {value!r}"
                         if key not in ("token", "secret", "password")
                         else f"{where}.{key}: {error}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError("must be a non-empty string")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// address")
    return value.rstrip("/")


def _type(value: Any) -> str:
    if value not in TYPES:
        raise ValueError(f"must be one of {', '.join(TYPES)}")
    return value


def _rewrite(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) and s.startswith("/")
                                                        for s in p) for p in value):
        raise ValueError('must be a list of [from, to] pairs of absolute paths, '
                         'e.g. [["/srv/media", "/data/media"]]')
    return tuple((a.rstrip("/") or "/", b.rstrip("/") or "/") for a, b in value)


def _kinds(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not set(value) <= set(KINDS):
        raise ValueError(f"must be a non-empty list of {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in value)


def _command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise ValueError('must be a list of arguments, e.g. ["/usr/local/bin/hook", "--flag"] '
                         "(no shell)")
    return tuple(value)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        raise ValueError("must be a number of seconds > 0")
    return float(value)


CHECKS = {"url": _url, "type": _type, "rewrite": _rewrite, "kinds": _kinds,
          "command": _command, "min_interval_s": _seconds, "timeout_s": _seconds}
