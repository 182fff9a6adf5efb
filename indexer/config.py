"""Configuration: every key, its default, and how a value is resolved.

One table, `KEYS`, names every key with its default and its check. A value
comes from, weakest first: the built-in default, the chosen profile, the TOML
file, the environment, the command line. `load()` resolves them once into a
frozen `Config`; nothing else in the package reads files or the environment
for settings. A bad value or an unknown key raises `ConfigError` whose
message is one line naming the key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ignore
from .paths import absolute
from .push_config import PushConfig, Target, targets as _targets

log = logging.getLogger(__name__)

KINDS = ("audio", "video", "image", "other")
DEFAULT_CRON = "0 4 * * *"
PROFILES = ("default", "conservative", "aggressive")
DEFAULT_IGNORE = (
    "@eaDir", ".stversions", ".Trash-*", "lost+found", ".DS_Store", "Thumbs.db",
    "._*", "*.part", "*.tmp", "*.crdownload", "*.!qB",
    ".*.??????",  # rsync's temporary name for a file it is still copying: .name.XXXXXX
)


class ConfigError(ValueError):
    """A configuration problem; `str()` is the one line shown to the user."""


# --- value checks: each takes the raw value and returns the clean one or raises


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _int_at_least(low: int, high: int, auto: bool = False) -> Callable[[Any], int | str]:
    def check(value: Any) -> int | str:
        if auto and value == "auto":
            return "auto"
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            extra = ' or "auto"' if auto else ""
            raise ValueError(f"must be a whole number from {low} to {high}{extra}")
        return value
    return check


def _number_at_least(low: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not number >= low or number == float("inf"):
            raise ValueError(f"must be a number >= {low:g}")
        return number
    return check


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError("must be a non-empty string")
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a list of non-empty strings")
    return tuple(value)


def _ignore(value: Any) -> tuple[str, ...]:
    """gitignore patterns that pathspec can read. The defaults are known to (a test says
    so): not compiled here, so that a command that never walks never imports pathspec."""
    patterns = _str_list(value)
    ignore.check_patterns(p for p in patterns if p not in DEFAULT_IGNORE)
    return patterns


def _roots(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # from the environment: like $PATH
        value = [v for v in value.split(os.pathsep) if v]
    roots = _str_list(value)
    if any("\0" in root for root in roots):
        raise ValueError("must not contain NUL characters")
    return roots


def _kinds(value: Any) -> tuple[str, ...]:
    kinds = _str_list(value)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} is not a kind; the kinds are "
                         f"{', '.join(KINDS)}")
    if not kinds:
        raise ValueError(f"must name at least one kind: {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)


def _sizes(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        sizes = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        sizes = None
    if sizes is None or not all(16 <= size <= 4096 for size in sizes):
        raise ValueError("must be a list of sizes in pixels from 16 to 4096")
    return sizes


def _cron(value: Any) -> str:
    fields = value.split() if isinstance(value, str) else []
    if len(fields) != 5:
        raise ValueError('must be five crontab fields: minute hour day month weekday, '
                         'e.g. "0 4 * * *"')
    if value != DEFAULT_CRON:  # apscheduler's own parser, imported only when it has work
        from apscheduler.triggers.cron import CronTrigger
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as error:
            raise ValueError(f"{error} (fields: minute hour day month weekday)") from None
    return value


def _interval(value: Any) -> str:
    if value in ("", None):
        return ""
    if interval_seconds(str(value)) is None:
        raise ValueError('must be a duration like "6h", "90m", "1d12h", "2w" or a number of '
                         "seconds, at least 1 s")
    return str(value)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def duration_seconds(text: str) -> float | None:
    """ "6h" -> 21600.0; "1d12h" -> 129600.0; "2w" -> 1209600.0; a bare number or
    nonsense -> None."""
    text = text.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


def interval_seconds(text: str) -> float | None:
    """reconcile.interval: a duration, or a bare number of seconds; at least 1 s."""
    text = text.strip()
    seconds = float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else duration_seconds(text)
    return seconds if seconds is not None and 1 <= seconds < float("inf") else None


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value
    return check


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: Any
    check: Callable[[Any], Any]
    help: str

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


KEYS: tuple[Key, ...] = (
    Key("library", "roots", [], _roots,
        "folders to index; files outside them are never read"),
    Key("library", "ignore", list(DEFAULT_IGNORE), _ignore,
        "gitignore patterns, relative to each root, of files and folders to skip (and in each "
        "folder: .indexerignore, .ndignore, .plexignore)"),
    Key("library", "follow_symlinks", False, _bool,
        "follow symbolic links (each folder is still visited once, so loops end)"),
    Key("library", "kinds", ["audio", "video", "image"], _kinds,
        'which kinds of file to index, by extension: audio, video, image, other'),
    Key("database", "path", "auto", _text,
        'the catalogue file; "auto" = $XDG_DATA_HOME/indexer/library.db (~/.local/share/...)'),
    Key("database", "synchronous", "full", _choice("full", "normal"),
        'SQLite synchronous mode: "full" survives power loss, "normal" may lose the last commits'),
    Key("database", "busy_timeout_s", 10, _number_at_least(0.1),
        "how long a write waits on another process's lock before backing off and retrying"),
    Key("scan", "profile", "default", _choice(*PROFILES),
        "a set of defaults for the keys below; any key set here wins over the profile:"),
    Key("scan", "parallel", True, _bool,
        "hash files in a pool of threads; false runs every stage in one thread"),
    Key("scan", "workers", "auto", _int_at_least(1, 256, auto=True),
        'threads hashing files in parallel mode; "auto" = number of CPUs'),
    Key("scan", "batch_size", 500, _int_at_least(1, 100_000),
        "catalogue rows written per transaction (and at most 0.5 s apart); each commit syncs "
        "the disk"),
    Key("scan", "smart_hash", True, _bool,
        "hash a file only when it is new or its size, mtime, inode or ctime changed"),
    Key("scan", "hash_buffer_kib", 1024, _int_at_least(64, 65_536),
        "read buffer per hashing thread, KiB; over 64 lets xxhash release the GIL"),
    Key("scan", "max_read_mib_s", 0, _number_at_least(0),
        "cap on the bytes read per second for hashing, MiB/s; 0 = no cap"),
    Key("scan", "survey_workers_from", 20_000, _int_at_least(1, 1_000_000_000),
        "parallel rescans walk a root in worker processes from this many catalogued files"),
    Key("metadata", "enabled", True, _bool,
        "read tags and stream properties of audio files, videos' headers, photos' EXIF, "
        "and cover art"),
    Key("metadata", "workers", "auto", _int_at_least(1, 64, auto=True),
        'processes reading tags; "auto" = number of CPUs'),
    Key("metadata", "timeout_s", 30, _number_at_least(1),
        "a file whose tags take longer to read is recorded as an error, its worker replaced"),
    Key("metadata", "artwork", True, _bool,
        "keep embedded and folder cover images in the artwork cache next to the catalogue"),
    Key("metadata", "thumbnails", [], _sizes,
        "thumbnail sizes in pixels, e.g. [300, 600]: of each cover, of each photo, and of a "
        "frame of each video without a cover; none when empty"),
    Key("metadata", "thumbnail_budget_s", 2.0, _number_at_least(0),
        "the time a photo's or video's thumbnail may take to make; past it, none is made"),
    Key("watch", "debounce_ms", 1000, _int_at_least(0, 3_600_000),
        "a folder is scanned once it has had no event for this long"),
    Key("watch", "max_wait_ms", 10_000, _int_at_least(0, 3_600_000),
        "and at the latest this long after its first event, however busy"),
    Key("watch", "closed_quiet_ms", 200, _int_at_least(0, 3_600_000),
        "but this soon when its last event is a file closed by its writer (or renamed in)"),
    Key("watch", "settle_seconds", 5, _number_at_least(0),
        "a file is indexed only once it has not been written to for this long (copies), "
        "unless its writer closed it"),
    Key("watch", "backend", "auto", _choice("auto", "inotify", "polling"),
        'how changes are noticed: "auto" = inotify, or polling on NFS, SMB and FUSE mounts'),
    Key("watch", "poll_interval_s", 300, _number_at_least(0.1),
        "with polling, seconds between checks (a root that went offline is looked at every 2 s)"),
    Key("reconcile", "cron", DEFAULT_CRON, _cron,
        "when the daemon rescans every root to catch what watching missed (crontab form)"),
    Key("reconcile", "interval", "", _interval,
        'instead of cron: every so long, e.g. "6h", "90m", "1d12h", "3600" (seconds); "" = use cron'),
    Key("service", "low_priority", True, _bool,
        "scan at low CPU and I/O priority (nice 10, best-effort 7) so playback never stutters"),
    Key("service", "log_level", "info", _choice("debug", "info", "warning", "error"),
        "what the service logs"),
    Key("push", "delay_s", 2, _number_at_least(0),
        "while scans go on, changes are sent once none came for this long (one request per folder)"),
    Key("push", "tags_wait_s", 30, _number_at_least(0),
        "an audio or video file is announced once its tags are read, or after this long at most"),
    Key("push", "backoff_max_s", 300, _number_at_least(1),
        "a target that fails is tried again after 1 s, 2 s, 4 s, ... up to this long"),
    Key("push", "batch_size", 500, _int_at_least(1, 100_000),
        "changes per webhook POST or command run; paths per Jellyfin or Emby request"),
    Key("push", "timeout_s", 10, _number_at_least(0.1),
        "time limit of each request to a target, or run of a command (a target's timeout_s wins)"),
)
KEY_BY_NAME: Mapping[str, Key] = {key.dotted: key for key in KEYS}

# Profiles only set defaults: any key given in a file, the environment or on
# the command line wins over them.
PROFILE_VALUES: Mapping[str, Mapping[str, Any]] = {
    "default": {},
    "conservative": {"scan.workers": 2, "scan.batch_size": 250, "metadata.workers": 1},
    "aggressive": {"scan.workers": 8, "scan.batch_size": 1000, "metadata.workers": 4},
}


@dataclass(frozen=True)
class LibraryConfig:
    roots: tuple[str, ...]
    ignore: tuple[str, ...]
    follow_symlinks: bool
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path
    synchronous: str
    busy_timeout_s: float


@dataclass(frozen=True)
class ScanConfig:
    profile: str
    parallel: bool
    workers: int
    batch_size: int
    smart_hash: bool
    hash_buffer_kib: int
    max_read_mib_s: float
    survey_workers_from: int = 20_000


@dataclass(frozen=True)
class MetadataConfig:
    enabled: bool
    workers: int
    timeout_s: float
    artwork: bool
    thumbnails: tuple[int, ...]
    thumbnail_budget_s: float = 2.0


@dataclass(frozen=True)
class WatchConfig:
    debounce_s: float
    max_wait_s: float
    closed_quiet_s: float
    settle_s: float
    backend: str
    poll_interval_s: float


@dataclass(frozen=True)
class ServiceConfig:
    reconcile_cron: str
    reconcile_interval_s: float | None
    low_priority: bool
    log_level: str


@dataclass(frozen=True)
class Config:
    library: LibraryConfig
    database: DatabaseConfig
    scan: ScanConfig
    metadata: MetadataConfig
    watch: WatchConfig
    service: ServiceConfig
    push: PushConfig = PushConfig()
    file: Path | None = None
    # dotted key -> where its value came from ("default", "profile aggressive", ...)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    values: Mapping[str, Any] = field(default_factory=dict, compare=False)


def default_db_path(env: Mapping[str, str]) -> Path:
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "indexer" / "library.db"


def config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The TOML file to read: `--config`, `$INDEXER_CONFIG`, the user's, the system's."""
    chosen = explicit or env.get("INDEXER_CONFIG")
    if chosen:
        return Path(chosen).expanduser()
    for candidate in (user_config_path(env), Path("/etc/indexer/config.toml")):
        if os.path.isfile(candidate):  # False, not an error, when HOME is not ours to read
            return candidate
    return None


def user_config_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "indexer" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: {error}") from None
    flat: dict[str, Any] = {}
    for section, table in document.items():
        if section == "notify":  # [[notify]]: an array of tables, one per target
            flat["notify"] = _notify(table, path)
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: unknown key at top level of {path} (expected a [section])")
        for name, value in table.items():
            dotted = f"{section}.{name}"
            if dotted not in KEY_BY_NAME:
                raise ConfigError(f"{dotted}: unknown key in {path}")
            flat[dotted] = value
    return flat


def _notify(value: Any, path: Path) -> tuple[Target, ...]:
    try:
        return _targets(value)
    except ValueError as error:
        raise ConfigError(f"{error} (in {path})") from None


def _read_env(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Keys from `INDEXER_<SECTION>_<KEY>` variables, plus `INDEXER_DB`."""
    found: dict[str, tuple[Any, str]] = {}
    sections = {key.section for key in KEYS}
    for var, value in env.items():
        if not var.startswith("INDEXER_") or var in ("INDEXER_CONFIG", "INDEXER_DB"):
            continue
        section, _, name = var[len("INDEXER_"):].lower().partition("_")
        if section not in sections:
            continue  # not one of ours: INDEXER_HOME and the like are left alone
        dotted = f"{section}.{name}"
        if dotted not in KEY_BY_NAME:
            raise ConfigError(f"{dotted}: unknown key (from environment variable {var})")
        found[dotted] = (value, f"environment {var}")
    if env.get("INDEXER_DB"):
        found["database.path"] = (env["INDEXER_DB"], "environment INDEXER_DB")
    return found


def record_roots(roots: tuple[str, ...], env: Mapping[str, str] | None = None) -> Path | None:
    """Where no configuration file is, write the user's with these roots (the first scan
    of folders: `indexer scan ~/Music`); the file written, or None."""
    env = os.environ if env is None else env
    if config_file(None, env) is not None:
        return None
    try:
        names = [json.dumps(root.encode().decode(), ensure_ascii=False) for root in roots]
    except UnicodeEncodeError:  # a name that is not UTF-8 cannot be written in TOML
        return None
    path = user_config_path(env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as out:  # never over one made meanwhile
            out.write("# Written by the first `indexer scan` of these folders. Every other key\n"
                      "# and its default: config.example.toml.\n\n"
                      f"[library]\nroots = [{', '.join(names)}]\n")
    except OSError:
        return None
    return path


def load(
    config_path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the configuration once: defaults < profile < file < env < `overrides`.

    `overrides` holds command-line values by dotted key (None means "not given").
    """
    env = os.environ if env is None else env
    path = config_file(config_path, env)
    layers: list[tuple[dict[str, Any], str]] = []
    notify: tuple[Target, ...] = ()
    if path is not None:
        document = _read_toml(path)
        notify = document.pop("notify", ())
        layers.append((document, f"file {path}"))
    env_values = _read_env(env)
    cli = {k: v for k, v in (overrides or {}).items() if v is not None}
    for dotted in cli:
        if dotted not in KEY_BY_NAME:
            raise ConfigError(f"{dotted}: unknown key")

    values = {key.dotted: key.check(key.default) for key in KEYS}
    sources = {key.dotted: "default" for key in KEYS}
    explicit: dict[str, tuple[Any, str]] = {}
    # Every value is checked where it was given, even one a later layer overrides:
    # a mistake in the file is reported though a flag happens to hide it today.
    for layer, source in layers:
        explicit.update({k: (_checked(k, v, source), source) for k, v in layer.items()})
    explicit.update({k: (_checked(k, v, source), source) for k, (v, source) in env_values.items()})
    explicit.update({k: (_checked(k, v, "command line"), "command line") for k, v in cli.items()})

    profile = explicit.get("scan.profile", ("default",))[0]
    for dotted, value in PROFILE_VALUES[profile].items():
        values[dotted], sources[dotted] = value, f"profile {profile}"
    for dotted, (value, source) in explicit.items():
        values[dotted], sources[dotted] = value, source
    return _build(values, sources, path, env, notify)


def _check_place(dotted: str, value: Any, source: str) -> None:
    """Paths in a file or the environment must be whole (absolute, or from ~): relative ones
    would name other folders from each folder the command runs in. Paths on the command
    line are relative to the current folder. A root that is a file is a mistake."""
    paths = value if dotted == "library.roots" else (value,) if dotted == "database.path" else ()
    for path in paths:
        if source != "command line" and path != "auto" and not os.path.isabs(
                os.path.expanduser(path)):
            raise ConfigError(f"{dotted}: {path!r} is a relative path; give it whole, e.g. "
                              f"{absolute(path)!r} (from {source})")
        if dotted == "library.roots" and os.path.exists(absolute(path)) and not os.path.isdir(
                absolute(path)):
            raise ConfigError(f"library.roots: {path} is a file, not a folder (from {source})")


def _checked(dotted: str, value: Any, source: str) -> Any:
    try:
        checked = KEY_BY_NAME[dotted].check(value)
    except ValueError as error:
        where = "" if source == "default" else f" (from {source})"
        raise ConfigError(f"{dotted}: {error}, got {value!r}{where}") from None
    _check_place(dotted, checked, source)
    return checked


def _build(values: dict[str, Any], sources: dict[str, str], path: Path | None,
           env: Mapping[str, str], notify: tuple[Target, ...] = ()) -> Config:
    cpus = os.cpu_count() or 1

    def auto(dotted: str) -> int:
        return cpus if values[dotted] == "auto" else values[dotted]

    db_path = values["database.path"]
    roots = tuple(absolute(r) for r in values["library.roots"])
    for why in ignore.never_matching([p for p in values["library.ignore"] if p not in DEFAULT_IGNORE],
                                     roots):
        log.warning("library.ignore: %s", why)
    return Config(
        library=LibraryConfig(
            roots=roots,
            ignore=values["library.ignore"],
            follow_symlinks=values["library.follow_symlinks"],
            kinds=values["library.kinds"],
        ),
        database=DatabaseConfig(
            path=default_db_path(env) if db_path == "auto" else Path(absolute(db_path)),
            synchronous=values["database.synchronous"],
            busy_timeout_s=values["database.busy_timeout_s"],
        ),
        scan=ScanConfig(
            profile=values["scan.profile"],
            parallel=values["scan.parallel"],
            workers=auto("scan.workers"),
            batch_size=values["scan.batch_size"],
            smart_hash=values["scan.smart_hash"],
            hash_buffer_kib=values["scan.hash_buffer_kib"],
            max_read_mib_s=values["scan.max_read_mib_s"],
            survey_workers_from=values["scan.survey_workers_from"],
        ),
        metadata=MetadataConfig(
            enabled=values["metadata.enabled"],
            workers=auto("metadata.workers"),
            timeout_s=values["metadata.timeout_s"],
            artwork=values["metadata.artwork"],
            thumbnails=values["metadata.thumbnails"],
            thumbnail_budget_s=values["metadata.thumbnail_budget_s"],
        ),
        watch=WatchConfig(
            debounce_s=values["watch.debounce_ms"] / 1000,
            max_wait_s=values["watch.max_wait_ms"] / 1000,
            closed_quiet_s=values["watch.closed_quiet_ms"] / 1000,
            settle_s=values["watch.settle_seconds"],
            backend=values["watch.backend"],
            poll_interval_s=values["watch.poll_interval_s"],
        ),
        service=ServiceConfig(
            reconcile_cron=values["reconcile.cron"],
            reconcile_interval_s=interval_seconds(values["reconcile.interval"] or ""),
            low_priority=values["service.low_priority"],
            log_level=values["service.log_level"],
        ),
        push=PushConfig(
            delay_s=values["push.delay_s"],
            tags_wait_s=values["push.tags_wait_s"],
            backoff_max_s=values["push.backoff_max_s"],
            batch_size=values["push.batch_size"],
            timeout_s=values["push.timeout_s"],
            targets=notify,
        ),
        file=path,
        sources=sources,
        values={**values, "notify": notify},
    )
