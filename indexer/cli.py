"""The `indexer` command. Each command loads the configuration, calls one function,
and maps known errors to one line and an exit code:

    0  done
    1  a fatal error: no root usable, catalogue busy or unwritable; for `doctor` and
       `verify`, something to fix was found
    2  bad usage or configuration
    3  `scan` or `rescan` done, but some files or folders could not be read
       (`indexer ls --errors` lists them)
    130  the scan was cancelled (Ctrl-C or SIGTERM); what was done is saved
    141  the reader of the output went away (`indexer ls | head`): nothing said

Heavy modules are imported inside the commands: start-up time counts in every call.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, Optional

import click
import typer

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False, suggest_commands=False,  # click suggests
                  help="Keep a SQLite catalogue of a media library in sync with its folders.")
log = logging.getLogger("indexer")

ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", metavar="FILE", help="TOML configuration (default: $INDEXER_CONFIG, "
    "~/.config/indexer/config.toml, /etc/indexer/config.toml).")]
DbOption = Annotated[Optional[str], typer.Option(
    "--db", metavar="FILE", help="The catalogue file (also $INDEXER_DB).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

EXIT_FATAL, EXIT_USAGE, EXIT_FILE_ERRORS, EXIT_CANCELLED = 1, 2, 3, 130
EXIT_READER_GONE = 128 + signal.SIGPIPE  # as a shell reports a command killed by SIGPIPE

# Flags that may stand anywhere on the line, before or after the command (`_hoisted`)
LOGGING_FLAGS = ("--debug", "--quiet", "-q", "--verbose", "-v")
# --config, --db and the logging level given before the command
_given: dict[str, Any] = {}


def _fail(code: int, message: str) -> None:
    from .paths import printable
    typer.echo(f"indexer: error: {printable(message)}", err=True)
    raise typer.Exit(code)


def _errors_to_exit_codes(command: Callable) -> Callable:
    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from .catalog import CatalogError
        from .config import ConfigError
        from .schema import SchemaTooNew
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            _fail(EXIT_USAGE, str(error))
        except (CatalogError, SchemaTooNew) as error:
            _fail(EXIT_FATAL, str(error))
        except BrokenPipeError:
            _reader_gone()
    return run


def _reader_gone() -> None:
    """The output's reader closed it (`| head`): end quietly, as a killed writer would,
    and let nothing try to flush into the closed pipe on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(EXIT_READER_GONE)


def _load(config_file: str | None, db: str | None, **overrides: Any):
    from . import config
    return config.load(config_file or _given.get("config"),
                       {"database.path": db or _given.get("db"), **overrides})


def _read_conn(cfg):
    from . import catalog
    return catalog.connect(cfg.database.path, readonly=True)


def _as_catalogue_owner(cfg) -> None:
    """Root, about to write a catalogue whose folder is another user's (the service's),
    writes it as that user: nothing root makes there could the service write again."""
    from .ownership import become_owner
    become_owner(cfg.database.path)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version
        typer.echo(f"indexer {version('indexer')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Debug logging, and tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    config_file: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Keep a SQLite catalogue of a media library in sync with its folders.

    --debug, --quiet and --verbose go anywhere on the line; --config and --db before
    the command or after it.
    """
    level = logging.DEBUG if debug or verbose else logging.WARNING if quiet else None
    _given.update(config=config_file, db=db, level=level)
    _setup_logging(level or logging.INFO)
    if not debug:
        sys.excepthook = _short_excepthook


@app.command()
@_errors_to_exit_codes
def scan(
    roots: Annotated[Optional[list[str]], typer.Argument(
        metavar="[ROOT]...", help="Folders to scan (default: library.roots).")] = None,
    sequential: Annotated[bool, typer.Option("--sequential", help="Run every stage in one thread.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Hashing threads (scan.workers).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Rows per transaction (scan.batch_size).")] = None,
    profile: Annotated[Optional[str], typer.Option(
        click_type=click.Choice(["default", "conservative", "aggressive"]),
        help="default, conservative or aggressive.")] = None,
    rehash: Annotated[bool, typer.Option("--rehash", help="Read and hash every file again, and read its tags again.")] = False,
    as_json: JsonOption = False,
    config_file: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Scan the library once: add new files, update changed ones, mark vanished ones missing.

    Example: indexer scan ~/Music --profile conservative
    """
    cfg = _load(config_file, db, **{
        "library.roots": roots or None, "scan.parallel": False if sequential else None,
        "scan.workers": workers, "scan.batch_size": batch_size, "scan.profile": profile})
    _as_catalogue_owner(cfg)
    from .console import print_summary, scan_progress
    from .manager import Manager

    manager = Manager(config=cfg)
    with _cancel_on_signals(manager.cancel), scan_progress(quiet=_quiet()) as show:
        result = manager.scan(on_progress=show, rehash=rehash)
    summary = result.summary()
    print_summary(summary, as_json, warnings=False)  # logged as they came
    if result.status == "cancelled":
        raise typer.Exit(EXIT_CANCELLED)
    if result.status == "failed":
        said = {w for texts in result.warnings.values() for w in texts}
        unsaid = [line for line in (result.message or "").splitlines() if line not in said]
        if unsaid or not said:
            _fail(EXIT_FATAL, "\n".join(unsaid) or "the scan failed")
        raise typer.Exit(EXIT_FATAL)
    if roots and cfg.file is None and cfg.sources["database.path"] == "default":
        _remember(cfg.library.roots)
    if summary["errors"]:
        raise typer.Exit(EXIT_FILE_ERRORS)


def _quiet() -> bool:
    return (_given.get("level") or logging.INFO) > logging.INFO


def _remember(roots: tuple[str, ...]) -> None:
    """The first scan of folders into the default catalogue, with no configuration file
    anywhere, writes one that names them: `indexer run` and `rescan` then know the library."""
    from .config import record_roots
    written = record_roots(roots)
    if written is not None:
        log.info("the library is %s from now on (library.roots in %s): `indexer run` watches "
                 "it, `indexer rescan` scans it", ", ".join(roots), written)


@app.command()
@_errors_to_exit_codes
def verify(
    roots: Annotated[Optional[list[str]], typer.Argument(
        metavar="[ROOT]...", help="Folders to verify (default: library.roots, else every "
        "root the catalogue holds files for).")] = None,
    read: Annotated[bool, typer.Option("--read", help="Also read every file whose size and "
                                       "mtime agree and compare its content hash.")] = False,
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """Compare the catalogue with the disk, writing nothing: files gone, not indexed or
    changed; with --read, files whose bytes changed under the same size and mtime (bit rot).
    Exit 0 when they agree, 1 when they differ or no root could be verified.

    Example: indexer verify --read /srv/music
    """
    from . import verify as verifying
    from .console import print_finding, print_verify_summary
    cfg = _load(config_file, db, **{"library.roots": roots or None})
    check = verifying.Verify(cfg.database.path, list(cfg.library.roots), cfg.library, read=read,
                             buffer_kib=cfg.scan.hash_buffer_kib,
                             max_read_mib_s=cfg.scan.max_read_mib_s)
    if not check.roots:
        _fail(EXIT_USAGE, "library.roots: no folder to verify; give one or set it in the config")
    with _cancel_on_signals(check.stop.set, "stopping: what was found so far is printed"):
        for finding in check:
            print_finding(finding, as_json)
    summary = check.summary()
    print_verify_summary(summary, as_json)
    if summary.status == "cancelled":
        raise typer.Exit(EXIT_CANCELLED)
    if summary.status != "agree":
        raise typer.Exit(EXIT_FATAL)


@app.command()
@_errors_to_exit_codes
def status(as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None) -> None:
    """Show running and recent scan jobs with their progress, and catalogue totals.

    Example: indexer status --json
    """
    from . import catalog
    cfg = _load(config_file, db)
    conn = _read_conn(cfg)
    report = {"catalogue": str(cfg.database.path), **catalog.status_report(conn),
              "service": _service_status(cfg)}
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    from .console import print_status
    print_status(report)


@app.command("ls")
@_errors_to_exit_codes
def list_files(
    missing: Annotated[bool, typer.Option("--missing", help="Only files marked missing.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="Only files with an error, then the "
                                         "folders and paths the last scan could not read.")] = False,
    limit: Annotated[Optional[int], typer.Option(help="At most this many rows.")] = None,
    kind: Annotated[Optional[str], typer.Option(
        "--kind", help="Only files of this kind: audio, video, image or other.")] = None,
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """List catalogue files in path order (present ones unless --missing).

    Example: indexer ls --kind video --errors
    """
    import itertools
    from . import catalog
    from .console import print_rows
    if kind is not None and kind not in ("audio", "video", "image", "other"):
        _fail(EXIT_USAGE, f"--kind must be audio, video, image or other, not {kind!r}")
    cfg = _load(config_file, db)
    conn = _read_conn(cfg)
    rows = catalog.iter_files(conn, missing=missing, errors=errors, kind=kind)
    if errors and kind is None:  # and what no file row holds: folders and paths not read
        rows = itertools.chain(rows, catalog.walk_problems(conn))
    print_rows(itertools.islice(rows, limit), as_json)


@app.command()
@_errors_to_exit_codes
def show(
    path: Annotated[str, typer.Argument(help="A file's path (relative paths are made absolute).")],
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """Show one file's catalogue row, its tags (a video's and photo's facts), a video's
    streams, and its artwork.

    Example: indexer show "~/Music/Artist/Album (2001)/01 - Song.flac"
    """
    from . import catalog
    from .console import print_record
    from .paths import absolute, db_text
    cfg = _load(config_file, db)
    text = db_text(absolute(path))[0]
    record = catalog.file_record(_read_conn(cfg), text)
    if record is None:
        _fail(EXIT_FATAL, f"{text} is not in the catalogue {cfg.database.path}")
    print_record(record, as_json)


@app.command(context_settings={"ignore_unknown_options": True})  # -word: not an option
@_errors_to_exit_codes
def search(
    query: Annotated[list[str], typer.Argument(
        metavar="QUERY...", help='Words, "phrases", field:value (title, artist, album, '
        'album_artist, genre, show), year:1969 or year:1965-1970, season:2, episode:5, '
        'kind:video (audio, video, image), hdr:hdr10 (hlg, dolbyvision, any, none), '
        'resolution:2160 (1080, 720, 4k), prefix*, -word to leave out.')],
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 50,
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """Search the tags of present files (title, artist, album, album artist, genre, show).

    Example: indexer search artist:beatles year:1969;  indexer search show:office season:2
    """
    from .console import print_tracks
    from .search import QueryError, search as run_search
    cfg = _load(config_file, db)
    try:
        found = list(run_search(_read_conn(cfg), " ".join(query), limit=limit + 1))
    except QueryError as error:
        _fail(EXIT_USAGE, str(error))
    print_tracks(found[:limit], as_json)
    if len(found) > limit:
        log.warning("more than %d results: give a larger --limit, or more words", limit)


@app.command("config")
@_errors_to_exit_codes
def show_config(as_json: JsonOption = False, config_file: ConfigOption = None,
                db: DbOption = None) -> None:
    """Show the effective configuration and where each value came from.

    Example: INDEXER_SCAN_WORKERS=2 indexer config
    """
    from .console import print_config
    cfg = _load(config_file, db)
    print_config(cfg, as_json)


@app.command()
@_errors_to_exit_codes
def run(
    roots: Annotated[Optional[list[str]], typer.Argument(
        metavar="[ROOT]...", help="Folders to watch (default: library.roots).")] = None,
    config_file: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Run the service: reconcile the catalogue, then watch the roots and apply changes.

    Example: indexer run ~/Music   (as a systemd service: see systemd/indexer.service)
    """
    def load():
        return _load(config_file, db, **{"library.roots": roots or None})
    cfg = load()
    if not cfg.library.roots:
        _fail(EXIT_USAGE, "library.roots: no folder to watch; give one or set it in the config")
    _setup_logging(_given.get("level") or getattr(logging, cfg.service.log_level.upper()))
    _as_catalogue_owner(cfg)
    from .daemon import Service
    service = Service(cfg, reload=load)
    signal.signal(signal.SIGTERM, lambda signum, frame: service.stop())
    signal.signal(signal.SIGINT, lambda signum, frame: service.stop())
    signal.signal(signal.SIGHUP, lambda signum, frame: service.reload())
    from .writers import ignore_breaks
    ignore_breaks()  # then the watcher may ask the kernel whether a file is still open
    raise typer.Exit(service.run())


@app.command()
@_errors_to_exit_codes
def rescan(
    roots: Annotated[Optional[list[str]], typer.Argument(
        metavar="[ROOT]...", help="Roots to reconcile (default: all).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Read and hash every file again.")] = False,
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """Ask the running service to reconcile now, and show its progress until it ends.
    With no service running, scan here instead.

    Example: indexer rescan ~/Music --full
    """
    from . import catalog, control
    cfg = _load(config_file, db, **{"library.roots": roots or None})
    address = control.service_socket(catalog.WriterLock(cfg.database.path).path)
    if address is None:
        catalog.refuse_if_read_only(cfg.database.path)  # one line, not "scanning here" first
        log.info("no service runs for %s: scanning here", cfg.database.path)
        return scan(roots=roots, rehash=full, as_json=as_json, config_file=config_file, db=db)
    from .console import print_summary, service_progress
    from .paths import absolute
    message = {"cmd": "rescan", "roots": [absolute(r) for r in roots or []], "full": full}
    try:
        with service_progress() as show:
            for answer in control.request(address, message):
                if answer["event"] == "progress":
                    show(answer)
                elif answer["event"] == "done":
                    break
    except control.ControlError as error:
        _fail(EXIT_FATAL, f"the service did not take the request: {error}")
    for summary in answer.get("jobs", []):
        print_summary(summary, as_json)
    if answer.get("offline"):  # said, in JSON too, and the exit code tells
        from .console import print_offline
        print_offline(answer["offline"], as_json)
        raise typer.Exit(EXIT_FATAL)
    if any(summary["errors"] for summary in answer.get("jobs", [])):
        raise typer.Exit(EXIT_FILE_ERRORS)


@app.command()
@_errors_to_exit_codes
def doctor(as_json: JsonOption = False, config_file: ConfigOption = None,
           db: DbOption = None) -> None:
    """Check the configuration, the roots, the inotify limit, the catalogue and the service;
    one line each, with the fix. Exit 0 when healthy, 1 otherwise.

    Example: indexer doctor
    """
    from . import config as config_module, doctor as checks
    try:
        cfg = _load(config_file, db)
    except config_module.ConfigError as error:
        found = [checks.Check("config", "fail", str(error), "correct that key")]
    else:
        found = checks.run(cfg)
    from .console import print_checks
    print_checks(found, as_json)
    if any(c.status == "fail" for c in found):
        raise typer.Exit(EXIT_FATAL)


notify_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="The media servers and hooks told of each change ([[notify]]).")
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
@_errors_to_exit_codes
def notify_test(
    name: Annotated[Optional[str], typer.Argument(help="Only the [[notify]] of this name.")] = None,
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """Check each [[notify]] target now (Plex: token, and each root in a library; Jellyfin,
    Emby: token; webhook: a test POST; ...); one line each, with the fix. Exit 0 when all
    work, 1 otherwise.

    Example: indexer notify test plex
    """
    from . import doctor as checks
    cfg = _load(config_file, db)
    names = [t.name for t in cfg.push.targets]
    if name is not None and name not in names:
        _fail(EXIT_USAGE, f"no [[notify]] named {name!r} in the configuration"
              + (f" (there are: {', '.join(names)})" if names else " (there are none)"))
    found = checks.target_checks(cfg, name) or [checks.Check(
        "notify", "fail", f"no [[notify]] targets in {cfg.file or 'the configuration'}",
        "add a [[notify]] table for each media server (see config.example.toml)")]
    from .console import print_checks
    print_checks(found, as_json)
    if any(c.status == "fail" for c in found):
        raise typer.Exit(EXIT_FATAL)


@app.command()
@_errors_to_exit_codes
def changes(
    since: Annotated[int, typer.Option(help="Only changes after this sequence number.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", help="Then wait for new changes and print "
                                         "each as it is committed, until Ctrl-C.")] = False,
    as_json: JsonOption = False, config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """The change feed, in order: files added, modified, moved, missing, restored, purged,
    and tagged (their tags read).

    Example: indexer changes --since 1200 --follow --json   (push changes to a media server)
    """
    from . import queries
    from .console import print_change
    cfg = _load(config_file, db)
    conn = _read_conn(cfg)
    stopped = threading.Event()
    if follow:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopped.set())
    feed = queries.follow(conn, since, stopped.is_set) if follow else queries.changes(conn, since)
    for change in feed:
        print_change(change, as_json)


@app.command()
@_errors_to_exit_codes
def dupes(as_json: JsonOption = False, config_file: ConfigOption = None,
          db: DbOption = None) -> None:
    """Files with the same content (size and hash), grouped, with the bytes they waste.

    Example: indexer dupes --json
    """
    from . import queries
    from .console import print_dupes
    cfg = _load(config_file, db)
    print_dupes(queries.duplicates(_read_conn(cfg)), as_json)


@app.command()
@_errors_to_exit_codes
def export(
    format: Annotated[str, typer.Option("--format", click_type=click.Choice(["json", "csv"]),
                                        help="json (one object a line) or csv.")] = "json",
    output: Annotated[Optional[str], typer.Option("--output", metavar="FILE",
                                                   help="Write here instead of standard output.")] = None,
    config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """The present files with their tags, streamed (constant memory however large).

    Example: indexer export --format csv --output library.csv
    """
    from . import queries
    from .console import write_export
    cfg = _load(config_file, db)
    rows = queries.export_rows(_read_conn(cfg))
    if output is None:
        write_export(rows, format, sys.stdout)
        return
    try:
        out = open(output, "w", newline="", encoding="utf-8")
    except OSError as error:
        _fail(EXIT_USAGE, f"--output {output}: {error.strerror}; give a file in a folder "
                          "that exists and this user may write")
    with out:
        write_export(rows, format, out)


@app.command()
@_errors_to_exit_codes
def purge(
    missing_older_than: Annotated[str, typer.Option(
        "--missing-older-than", metavar="AGE", help='How long missing, e.g. "30d", "12h".')] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List only; delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before deleting.")] = False,
    config_file: ConfigOption = None, db: DbOption = None,
) -> None:
    """Delete the rows of files missing for longer than AGE (the only way rows are ever
    deleted), with their tags and the artwork no other file uses. Lists them first.

    Example: indexer purge --missing-older-than 90d --dry-run
    """
    from . import catalog, purge as purging
    from .console import print_doomed, rows_count
    seconds = _age(missing_older_than)
    cfg = _load(config_file, db)
    doomed = purging.candidates(_read_conn(cfg), seconds / 86400)
    print_doomed(doomed)
    if dry_run or not doomed:
        return
    question = "delete this row?" if len(doomed) == 1 else f"delete these {len(doomed):,} rows?"
    if not yes and not _confirmed(question):
        typer.echo("nothing deleted")
        return
    from . import control
    address = control.service_socket(catalog.WriterLock(cfg.database.path).path)
    if address is not None:  # the service holds the only write connection: ask it
        done = {"files": 0, "artwork": 0}
        try:
            for start in range(0, len(doomed), 5000):  # requests stay under 64 KiB
                ids = [row.id for row in doomed[start:start + 5000]]
                for answer in control.request(address, {"cmd": "purge", "ids": ids}):
                    done = {k: done[k] + answer["purged"][k] for k in done}
        except control.ControlError as error:
            _fail(EXIT_FATAL, f"the service answered: {error}")
    else:
        _as_catalogue_owner(cfg)
        art_dir = str(cfg.database.path.parent / "artwork")
        with catalog.open_for_writing(cfg.database.path, cfg.database.synchronous,
                                      busy_timeout_s=cfg.database.busy_timeout_s) as conn:
            done = purging.purge(conn, doomed, art_dir)
    typer.echo(f"deleted {rows_count(done['files'])} and {done['artwork']:,} "
               f"image{'' if done['artwork'] == 1 else 's'} no file uses")


def _age(text: str) -> float:
    """--missing-older-than: a duration with its unit; a bare number could mean anything."""
    from .config import duration_seconds
    seconds = duration_seconds(text)
    if seconds is None:
        unit = " with its unit" if text.strip().replace(".", "", 1).isdigit() else ""
        _fail(EXIT_USAGE, f"--missing-older-than {text}: give an age{unit}, like 30d, 12h, "
                          "2w or 1d12h (s, m, h, d, w)")
    if seconds <= 0:
        _fail(EXIT_USAGE, f"--missing-older-than {text}: give more than nothing; a file just "
                          "marked missing may be a disk not yet back, or a move not yet seen")
    return seconds


def _confirmed(question: str) -> bool:
    """Yes from the user; no when there is nobody to ask (no terminal, stdin closed)."""
    import click
    try:
        return typer.confirm(question, default=False)
    except click.exceptions.Abort:
        typer.echo("", err=True)
        return False


def _service_status(cfg) -> dict | None:
    """What the running service says of itself, or None when none runs."""
    from . import catalog, control
    address = control.service_socket(catalog.WriterLock(cfg.database.path).path)
    if address is None:
        return None
    try:
        return next(control.request(address, {"cmd": "status"}, timeout=5))["service"]
    except (control.ControlError, StopIteration, OSError) as error:
        return {"error": str(error)}


class _cancel_on_signals:
    """SIGINT and SIGTERM both ask the scan to stop; a second one stops at once."""

    def __init__(self, cancel: Callable[[], None],
                 message: str = "stopping: saving what is done"):
        self.cancel, self.message = cancel, message
        self._asked = False

    def _handle(self, signum: int, frame: object) -> None:
        if self._asked:
            os._exit(EXIT_CANCELLED)  # the catalogue is crash-safe: SQLite rolls back
        self._asked = True
        log.warning("%s (again to quit at once)", self.message)
        self.cancel()

    def __enter__(self) -> None:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"indexer: {record.levelname.lower()}: {record.getMessage()}"


class _JournalFormatter(logging.Formatter):
    """For journald (stderr is the journal when $JOURNAL_STREAM is set): the syslog
    priority as a <N> prefix, which journald turns into the entry's level, and no
    timestamp or name, which it adds itself."""

    PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{record.getMessage()}"


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is now: a live progress bar redirects it, so log
    lines print above the bar instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _stderr_is_journal() -> bool:
    """Whether stderr is the journal's stream. systemd.exec(5): $JOURNAL_STREAM holds the
    DEVICE:INODE of the stream it connected, and a redirected stderr inherits the
    variable, so compare them with stderr's own (`indexer run 2>log` in a unit's shell)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        info = os.fstat(2)
        return (int(device), int(inode)) == (info.st_dev, info.st_ino)
    except (ValueError, OSError):  # not set, not numbers, or no stderr at all
        return False


def _setup_logging(level: int) -> None:
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(_JournalFormatter() if _stderr_is_journal() else _Formatter())
    root = logging.getLogger("indexer")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _short_excepthook(kind, error, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.exit(EXIT_CANCELLED)
    sys.stderr.write(f"indexer: error: {kind.__name__}: {error} (run with --debug for details)\n")
    sys.exit(EXIT_FATAL)


def _hoisted(args: list[str]) -> list[str]:
    """The logging flags moved to the front, from wherever they stand before `--`: the
    callback takes them, whatever the command."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in LOGGING_FLAGS]
    return flags + [a for a in args[:end] if a not in LOGGING_FLAGS] + args[end:]


def main() -> None:
    app(args=_hoisted(sys.argv[1:]), prog_name="indexer")
