"""beets as a real peer: its first import against our first full scan, `beet update` against
our no-change rescan, on the same music library, interleaved like every other side.

beets lives in its own virtual environment (WORKDIR/beets-venv, made and filled
with pip on first use, reused after), never in the project's. Each beets command
gets a BEETSDIR of its own in the workdir holding config.yaml and the beets
library, so nothing goes to ~/.config/beets. The config makes beets a reader
only: no copy, move, link or delete, no tag writing, no autotagger and no
plugins (beets 2.x loads musicbrainz unless told otherwise), no import log or
resume state. A snapshot of the root (names, sizes, mtimes) taken before and
after the beets runs must be equal, or the bench stops.

beets imports about 108 files/s at 10,000 tracks and slows past 30,000, so
libraries above --beets-max-files are skipped, with a note saying so.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from changes import snapshot
from harness import Bench, Row, Side, fresh_db, remove_db, run_interleaved

BEETS_REQUIREMENT = "beets>=2,<3"  # the config keys below are beets 2's
IMPORT, UPDATE = "first full scan vs beet import", "no-change rescan vs beet update"
# An import of 50,000 tracks takes beets about half an hour here: above this many
# tracks its import gets no warm-up run (our scan's runs before it warm the cache).
WARM_UP_UP_TO = 10_000


@dataclass
class Beets:
    beet: str  # the `beet` command in its venv
    version: str
    max_files: int


def ensure_beets(workdir: Path, max_files: int) -> Beets:
    """beets in WORKDIR/beets-venv: installed by pip if it is not there yet."""
    venv = workdir / "beets-venv"
    python = venv / "bin" / "python"
    if _beets_version(python) is None:
        print(f"bench: installing {BEETS_REQUIREMENT} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", BEETS_REQUIREMENT],
                       check=True)
    version = _beets_version(python)
    if version is None:
        raise SystemExit(f"bench: beets did not install into {venv}")
    return Beets(str(venv / "bin" / "beet"), version, max_files)


def _beets_version(python: Path) -> str | None:
    # Not `beet version`: without a BEETSDIR it makes ~/.config/beets/library.db.
    if not python.exists():
        return None
    found = subprocess.run([str(python), "-c", "import beets; print(beets.__version__)"],
                           capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


def write_config(beetsdir: Path, root: Path) -> None:
    """A fresh BEETSDIR whose config.yaml makes beets read the library and touch nothing in it."""
    shutil.rmtree(beetsdir, ignore_errors=True)
    beetsdir.mkdir(parents=True)
    quote = json.dumps  # a JSON string is a YAML double-quoted scalar
    (beetsdir / "config.yaml").write_text(f"""\
# Written by bench/beets_peer.py for each run: beets reads the library, never writes to it.
directory: {quote(str(root))}
library: {quote(str(beetsdir / "library.db"))}
statefile: {quote(str(beetsdir / "state.pickle"))}
plugins: []                          # beets 2.x enables musicbrainz by default
create_backup_before_migrations: no  # else a new library copies itself once per migration
import:
  copy: no                           # `beet update` also moves files when copy or move is on
  move: no
  link: no
  hardlink: no
  reflink: no
  delete: no
  write: no                          # no tags written into the files
  autotag: no                        # as is: no lookup, no network
  resume: no
  incremental: no
  log: null
  quiet: yes
  quiet_fallback: asis
  duplicate_action: keep
ui:
  color: no
""")


def beets_rows(bench: Bench, beets: Beets, root: Path, facts: dict) -> list[Row]:
    """Ours vs beets on a first import and on an update; beets must leave the root unchanged."""
    tracks = facts["params"]["tracks"]
    if tracks > beets.max_files:
        bench.note(f"beets skipped at {tracks:,} tracks: more than --beets-max-files "
                   f"{beets.max_files:,} (beets imports about 100 files/s)")
        return []
    before = snapshot(root)
    db = bench.db(f"beets-{tracks}")
    rows = [_import_row(bench, beets, root, db, tracks), _update_row(bench, beets, root, db, tracks)]
    remove_db(db)
    shutil.rmtree(bench.workdir / "beets")  # its libraries, as our catalogues are removed
    _check_untouched(root, before, snapshot(root))
    bench.note(f"beets {beets.version} left {root} as it was: {len(before):,} names, sizes "
               "and mtimes equal before and after its runs")
    return rows


def _beet(bench: Bench, beets: Beets, name: str, args: list[str], beetsdir: Path,
          tracks: int, prepare=None) -> Side:
    return bench.reference(name, [beets.beet, *args], files=tracks,
                           env={"BEETSDIR": str(beetsdir)}, prepare=prepare)


def _import_row(bench: Bench, beets: Beets, root: Path, db: Path, tracks: int) -> Row:
    print(f"first full scan vs beet import, {tracks:,} tracks", file=sys.stderr)
    beetsdir = bench.workdir / "beets" / "import"
    ours = bench.scan(f"full scan vs beets, {tracks:,} tracks", root, db, prepare=fresh_db(db))
    imp = _beet(bench, beets, f"beet import -A, {tracks:,} tracks",
                ["import", "-A", "-q", "-C", "-W", str(root)], beetsdir, tracks,
                prepare=lambda i: write_config(beetsdir, root))  # a fresh beets library each run
    run_interleaved([ours, imp], bench.runs, warm_up=tracks <= WARM_UP_UP_TO)
    _check_imported(beetsdir, tracks)
    return Row(IMPORT, ours, imp, "beets/ours", False)


def _update_row(bench: Bench, beets: Beets, root: Path, db: Path, tracks: int) -> Row:
    """Both libraries are the ones the import row's last runs made: nothing changed since."""
    print(f"no-change rescan vs beet update, {tracks:,} tracks", file=sys.stderr)
    beetsdir = bench.workdir / "beets" / "import"
    ours = bench.scan(f"no-change rescan vs beets, {tracks:,} tracks", root, db)
    update = _beet(bench, beets, f"beet update, {tracks:,} tracks", ["update", "-M"], beetsdir,
                   tracks)
    run_interleaved([ours, update], bench.runs)
    return Row(UPDATE, ours, update, "beets/ours", False)


def _check_imported(beetsdir: Path, tracks: int) -> None:
    """beets must have taken in every track, or the comparison is of less work."""
    with closing(sqlite3.connect(beetsdir / "library.db")) as db:
        items = db.execute("SELECT count(*) FROM items").fetchone()[0]
    if items != tracks:
        raise SystemExit(f"bench: beets imported {items:,} items of {tracks:,} tracks "
                         f"(library {beetsdir / 'library.db'})")


def _check_untouched(root: Path, before: dict, after: dict) -> None:
    if before == after:
        return
    changed = sorted(set(before) ^ set(after)) + sorted(
        path for path in set(before) & set(after) if before[path] != after[path])
    raise SystemExit(f"bench: beets changed {root}: {len(changed)} names differ, e.g. "
                     + ", ".join(changed[:5]))
