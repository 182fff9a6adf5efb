"""MPD as a peer (`run.py --mpd`): its database update against our scan, its auto_update
against our service, on the same library, interleaved in the same invocation.

MPD runs as mpd_server.py sets it up (only read access to the library; database,
state, pid, log and sockets in WORKDIR/mpd; 127.0.0.1 on a free port; a null
audio output; no zeroconf). Its side of a scan is `mpc update --wait` (a C
client: its start-up is a millisecond), timed from spawn to exit like every
side; its CPU is MPD's own from /proc/PID/stat across the run, plus mpc's.

With MPD's auto_update off and no service of ours running:
  first update   MPD restarted on a copy of an empty database, then `mpc update
                 --wait`, vs `indexer scan` into a fresh catalogue
  no change      the database the last first update left vs our no-change scan,
                 and `find` beside them
  1% retagged    before each round a new 1% of the tracks retagged (changes.Retagger,
                 the mtime changes): both sides see the same slice
Then MPD restarted on its database with auto_update, and `indexer run` on ours:
  service        `mpc update --wait` vs `indexer rescan` through the running service
                 (CPU: the client's and the service's, its workers included)
  live           an album of 20 tracks copied (as cp does) into a new folder under
                 ROOT/_bench_live; from the copy's end both are polled every 5 ms:
                 MPD until `lsinfo` lists every track with its title, ours until the
                 catalogue holds every track's row with its tags (latency.tagged)

Checks: MPD's log says "added" once per track in every first update and
"updating" once per retagged track; `stats` counts every track; the library's
names, sizes and mtimes are the same before and after (changes.snapshot).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import changes
import latency
import make_library
from harness import Bench, Row, Sample, Side, fresh_db, measure, remove_db, run_interleaved
from mpd_server import (INSTALL, Client, Mpd, MpdError, MpdServer, empty_database, song_count,
                        vm_hwm_mib)

FIRST = "MPD: first scan vs first update"
NO_CHANGE = "MPD: no-change scan vs update"
FIND = "MPD: no-change scan vs find"
RETAGGED = "MPD: 1% retagged, scan vs update"
SERVICE = "MPD: rescan via service vs update"
LIVE = "MPD: album of 20 visible, run vs auto_update"
SCENARIOS = (FIRST, NO_CHANGE, FIND, RETAGGED, SERVICE, LIVE)
LIVE_FOLDER = "_bench_live"
LIVE_TRACKS = 20
# MPD waits 5 s after the last event (to 6 s: a timer of 1 s resolution); 20 s is a miss
LIVE_TIMEOUT_S = 20.0
POLL_S = 0.005
SETTLE_S = 5.0  # the service's watch.settle_s by default


def missing_note() -> str:
    return f"MPD not installed ({INSTALL}): no MPD peer"


@dataclass(eq=False)
class MpdSide(Side):
    """`mpc update --wait` on a running server: MPD's CPU and peak RSS, not mpc's alone."""

    server: MpdServer | None = None
    log_what: str = ""  # count MPD's "update: WHAT" log lines of each run
    counts: dict[int, int] = field(default_factory=dict)  # run index -> lines

    def run(self, i: int) -> Sample:
        self.prepare(i)
        if self.cache:
            self.cache.drop()
        cpu, log = self.server.cpu_seconds(), self.server.log_size()
        sample = measure(self.cmd, self.env, json_out=False)
        sample.cpu_s += self.server.cpu_seconds() - cpu
        sample.peak_rss_mib, sample.rss_exact = self.server.peak_rss_mib(), True
        if self.log_what:
            self.counts[i] = self.server.log_count(log, self.log_what)
        return sample


@dataclass(eq=False)
class ServiceSide(Side):
    """`indexer rescan` through the running service: the client's CPU and the service's
    (its workers included) across the run, as MpdSide counts MPD's."""

    service_pid: int = 0

    def run(self, i: int) -> Sample:
        before = _tree_cpu(self.service_pid)
        sample = super().run(i)
        sample.cpu_s += _tree_cpu(self.service_pid) - before
        return sample


def mpd_rows(bench: Bench, mpd: Mpd, root: Path, facts: dict, seed: int, trials: int,
             depth: int | None) -> list[Row]:
    """Every MPD scenario on one library; the library is left as it was, or the bench stops."""
    tracks = facts["params"]["tracks"]
    folder = bench.workdir / "mpd"
    shutil.rmtree(folder, ignore_errors=True)
    bench.note(f"MPD {mpd.version} (mpd --version), mpc {mpd.mpc_version}; {track_sizes(root)}")
    before = changes.snapshot(root)
    empty = empty_database(mpd, folder / "template")
    db = bench.db(f"mpd-{tracks}")
    server = MpdServer(mpd, folder / "scan", root)
    try:
        rows = _first_rows(bench, server, empty, root, db, tracks)
        rows += _no_change_rows(bench, server, root, db, facts["files"])
        rows += _retagged_rows(bench, server, root, db, seed)
        server.stop()
        # The retag rows put the tracks back just now (a new ctime): the service leaves
        # files written in the last settle_s (5 s) for later. Waited out here, its first
        # reconcile takes them in, not a deferred scan in the middle of the timed runs.
        time.sleep(SETTLE_S + 1)
        live = MpdServer(mpd, folder / "live", root, auto_update=True, depth=depth)
        shutil.copyfile(server.db, live.db)
        rows += _service_rows(bench, live, root, db, facts["files"], trials)
    finally:
        server.stop()
    remove_db(db)
    after = changes.snapshot(root)
    if before != after:
        raise SystemExit(f"bench: {root} differs after the MPD scenarios: "
                         f"{sorted(set(before.items()) ^ set(after.items()))[:5]}")
    bench.note(f"{root} as it was after the MPD scenarios: {len(before):,} names, sizes, mtimes")
    return rows


def _mpd_side(bench: Bench, name: str, server: MpdServer, tracks: int, *, log_what: str = "",
              prepare=None) -> MpdSide:
    return MpdSide(name, server.update_cmd(), bench.env, prepare or (lambda i: None),
                   is_indexer=False, files=tracks, cache=bench.cache, server=server,
                   log_what=log_what)


def _first_rows(bench: Bench, server: MpdServer, empty: Path, root: Path, db: Path,
                tracks: int) -> list[Row]:
    print(f"MPD: first update vs first full scan, {tracks:,} tracks", file=sys.stderr)
    ours = bench.scan("full scan vs MPD", root, db, prepare=fresh_db(db))
    theirs = _mpd_side(bench, "MPD first update", server, tracks, log_what="added",
                       prepare=lambda i: server.start(empty))
    run_interleaved([ours, theirs], bench.runs)
    songs = song_count(server)
    _check_counts(bench, theirs, "added", tracks)
    if songs != tracks:
        raise SystemExit(f"bench: MPD's database holds {songs:,} songs of {tracks:,} tracks")
    return [Row(FIRST, ours, theirs, "ours/MPD", True)]


def _no_change_rows(bench: Bench, server: MpdServer, root: Path, db: Path, files: int) -> list[Row]:
    print("MPD: no-change update vs no-change scan vs find", file=sys.stderr)
    ours = bench.scan("no-change scan vs MPD", root, db)
    theirs = _mpd_side(bench, "MPD no-change update", server, files)
    find = bench.reference("find -printf (MPD rows)",
                           ["find", str(root), "-type", "f", "-printf", "%s %T@ %i\n"], files=files)
    run_interleaved([ours, theirs, find], bench.runs)
    return [Row(NO_CHANGE, ours, theirs, "ours/MPD", True),
            Row(FIND, ours, find, "ours/find", True)]


def _retagged_rows(bench: Bench, server: MpdServer, root: Path, db: Path, seed: int) -> list[Row]:
    """One retag per round, before our scan: MPD's update after it sees the same slice."""
    retagger = changes.Retagger(root, 0.01, seed)
    print(f"MPD: {retagger.size} retagged, update vs scan", file=sys.stderr)
    ours = bench.scan(f"scan, {retagger.size} retagged (MPD rows)", root, db,
                      prepare=retagger.prepare)
    theirs = _mpd_side(bench, f"MPD update, {retagger.size} retagged", server, retagger.size,
                       log_what="updating")
    try:
        run_interleaved([ours, theirs], bench.runs)
    finally:
        retagger.restore()
    _check_counts(bench, theirs, "updating", retagger.size)
    found = [s.summary["added"] + s.summary["modified"] for s in ours.samples]
    bench.note(f"1% retagged: our scans found {', '.join(map(str, found))} new+changed "
               f"of {retagger.size}")
    return [Row(RETAGGED, ours, theirs, "ours/MPD", True, retagger.size)]


def _check_counts(bench: Bench, side: MpdSide, what: str, expected: int) -> None:
    timed = [side.counts[i] for i in sorted(side.counts) if i > 0]
    if set(timed) != {expected}:
        raise SystemExit(f"bench: MPD logged '{what}' {timed} times in its timed runs, "
                         f"not {expected} each")
    bench.note(f"{side.name}: MPD logged '{what}' {expected:,} times in each timed run")


def _service_rows(bench: Bench, live: MpdServer, root: Path, db: Path, files: int,
                  trials: int) -> list[Row]:
    """Both services running: a rescan request to each, then albums copied in."""
    live.start()
    log = bench.workdir / "mpd" / "indexer-run.log"
    with open(log, "wb") as out:
        service = subprocess.Popen([bench.indexer, "run", str(root), "--db", str(db)],
                                   env=bench.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=out)
    try:
        _wait_for_service(bench, service, db, log)
        print("MPD: update vs rescan through `indexer run`", file=sys.stderr)
        # The warm-ups also take in the 1% the retag rows put back (a new mtime for both).
        ours = ServiceSide("rescan via `indexer run`",
                           [bench.indexer, "rescan", str(root), "--db", str(db), "--json"],
                           bench.env, cache=bench.cache, files=files, service_pid=service.pid)
        theirs = _mpd_side(bench, "MPD update, auto_update on", live, files)
        run_interleaved([ours, theirs], bench.runs)
        rows = [Row(SERVICE, ours, theirs, "ours/MPD", True)]
        rows += _live_rows(bench, live, service.pid, root, db, trials)
        if service.poll() is not None:  # else a rescan would have scanned in its own process
            raise SystemExit(f"bench: `indexer run` ended (exit {service.returncode}) during "
                             f"the MPD rows; see {log}")
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
        live.stop()
        _remove_live(root)
    _note_overflows(bench, log)
    return rows


def _note_overflows(bench: Bench, log: Path) -> None:
    """Events lost make the service rescan its roots: said, as it changes what was timed."""
    said = log.read_text(errors="replace").count("events were lost (inotify queue overflow)")
    if said:
        bench.note(f"`indexer run` logged {said:,} inotify queue overflows during the service "
                   f"rows, each followed by a rescan of the root ({log})")


def _wait_for_service(bench: Bench, service: subprocess.Popen, db: Path, log: Path,
                      timeout: float = 120.0) -> None:
    """Until `indexer status` says a service answers: before that, `rescan` scans in-process."""
    deadline = time.monotonic() + timeout
    while True:
        said = subprocess.run([bench.indexer, "status", "--db", str(db), "--json"], env=bench.env,
                              capture_output=True, text=True)
        if said.returncode == 0 and isinstance(json.loads(said.stdout).get("service"), dict) \
                and "error" not in json.loads(said.stdout)["service"]:
            return
        if service.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: `indexer run` did not answer (exit {service.poll()}); "
                             f"see {log}")
        time.sleep(0.2)


# --- live: an album copied in


@dataclass
class Live:
    """One side's trials: a sample per album shown (seconds from the copy's end, CPU over
    the trial, peak RSS), and the albums it did not show within LIVE_TIMEOUT_S."""

    side: Side
    misses: int = 0


def _live_rows(bench: Bench, live: MpdServer, service_pid: int, root: Path, db: Path,
               trials: int) -> list[Row]:
    print(f"MPD: album of {LIVE_TRACKS} copied in, {trials} trials", file=sys.stderr)
    staging = bench.workdir / "mpd" / "staging"
    (root / LIVE_FOLDER).mkdir()  # made once, before: each album is a new folder in it
    time.sleep(1.0)  # both have seen the folder made
    ours = Live(bench.reference("`indexer run`: album of 20 visible", ["-"], files=LIVE_TRACKS))
    theirs = Live(bench.reference("MPD auto_update: album of 20 visible", ["-"],
                                  files=LIVE_TRACKS))
    client = live.client()
    began: list[float | None] = []  # when MPD's update of each album began
    try:
        for n in range(trials):
            source = _make_album(staging, n)
            target = root / LIVE_FOLDER / source.name
            paths = sorted(str(target / p.name) for p in source.iterdir()
                           if p.suffix[1:] in make_library.FORMATS)
            cpu_ours, cpu_theirs = _tree_cpu(service_pid), live.cpu_seconds()
            shutil.copytree(source, target, copy_function=shutil.copyfile)
            started = time.monotonic()  # the copy's last close: the clock starts here
            album = MpdAlbum(client, f"{LIVE_FOLDER}/{source.name}", started)
            seen = _poll(lambda: latency.tagged(db, paths), album, started)
            began.append(album.update_began)
            # CPU over the whole trial, until both showed the album (or gave up)
            _record(ours, seen[0], _tree_cpu(service_pid) - cpu_ours, vm_hwm_mib(service_pid))
            _record(theirs, seen[1], live.cpu_seconds() - cpu_theirs, live.peak_rss_mib())
            print(f"  trial {n + 1}/{trials}: ours {_secs(seen[0])}, MPD {_secs(seen[1])} "
                  f"(its update began at {_secs(began[-1])})", file=sys.stderr)
            _quiet(client)
    finally:
        client.close()
        shutil.rmtree(staging, ignore_errors=True)
    for name, side in (("ours", ours), ("MPD", theirs)):
        if side.misses:
            bench.note(f"live: {name} did not show {side.misses} of {trials} albums within "
                       f"{LIVE_TIMEOUT_S:.0f} s")
    bench.note("live, p95 of the seconds to see an album: " + ", ".join(
        f"{name} {latency.p95([s.wall_s for s in side.side.samples]):.2f} s"
        for name, side in (("ours", ours), ("MPD", theirs)) if side.side.samples))
    waits = [b for b in began if b is not None]
    if waits:
        bench.note(f"live: MPD's update of an album began {statistics.median(waits):.2f} s "
                   f"[{min(waits):.2f}-{max(waits):.2f}] after the copy's end (its inotify "
                   f"queue waits 5 s after the last event, on a timer of 1 s resolution); "
                   f"seen running in {len(waits)} of {trials} trials")
    if not (ours.side.samples and theirs.side.samples):
        return []
    return [Row(LIVE, ours.side, theirs.side, "ours/MPD", True)]


def _record(live: Live, at: float | None, cpu: float, peak: float) -> None:
    if at is None:
        live.misses += 1
    else:
        live.side.samples.append(Sample(at, cpu, peak, True))


def _secs(at: float | None) -> str:
    return "missed" if at is None else f"{at:.2f} s"


def _poll(ours_done, theirs_done, started: float) -> list[float | None]:
    """Seconds from `started` until each condition held; None for one that never did."""
    seen: list[float | None] = [None, None]
    checks = [ours_done, theirs_done]
    while time.monotonic() - started < LIVE_TIMEOUT_S and None in seen:
        for k, check in enumerate(checks):
            if seen[k] is None and check():
                seen[k] = time.monotonic() - started
        time.sleep(POLL_S)
    return seen


class MpdAlbum:
    """Called: whether MPD lists every track of `folder`, each with its title. Until then
    each call also asks `status`, to note when MPD's update began (`update_began`, seconds
    from `started`): what it waited before reading, apart from the reading."""

    def __init__(self, client: Client, folder: str, started: float):
        self.client, self.folder, self.started = client, folder, started
        self.update_began: float | None = None

    def __call__(self) -> bool:
        try:
            keys = [key for key, _ in self.client.command("lsinfo", self.folder)]
        except MpdError:  # not in its database yet
            keys = []
        if keys.count("file") == LIVE_TRACKS and keys.count("Title") == LIVE_TRACKS:
            return True
        if self.update_began is None and "updating_db" in dict(self.client.command("status")):
            self.update_began = time.monotonic() - self.started
        return False


def _quiet(client: Client) -> None:
    """Until MPD runs no update, then a second for both services to settle."""
    while "updating_db" in dict(client.command("status")):
        time.sleep(0.05)
    time.sleep(1.0)


def _make_album(staging: Path, n: int) -> Path:
    """An album of 20 tagged tracks (format by trial), a cover, in `staging`, outside the root."""
    make_library._load_templates()  # the writer's templates, as its worker processes load them
    ext = list(make_library.FORMATS)[n % len(make_library.FORMATS)]
    name = f"Live Album {n:02d}"
    album = make_library.Album(100_000 + n, name, "Live Artist", name, 2025, "Rock", ext)
    album.tracks = [make_library.Track(k, f"Live Track {n}-{k}", str(uuid.uuid4()))
                    for k in range(1, LIVE_TRACKS + 1)]
    make_library.write_album((str(staging), album))
    return staging / name


def _remove_live(root: Path) -> None:
    """The albums gone and the root's times as they were (making the folder touched them)."""
    folder = root / LIVE_FOLDER
    if not folder.exists():
        return
    info = os.stat(root)
    shutil.rmtree(folder)
    os.utime(root, ns=(info.st_atime_ns, info.st_mtime_ns))


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (the service and its tag workers)."""
    total = 0.0
    for member in [pid, *_descendants(pid)]:
        try:
            total += latency.cpu_seconds(member)
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended between the listing and the read: its time is in its parent's
    return total


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


# --- what the tables say


def track_sizes(root: Path) -> str:
    """The tracks' sizes: MPD's cost grows with them, ours is mostly per file."""
    sizes = [os.path.getsize(p) for p in changes.library_tracks(root)]
    return (f"tracks {len(sizes):,}, {statistics.mean(sizes) / 1024:.1f} KiB mean "
            f"({min(sizes) / 1024:.1f} to {max(sizes) / 1024:.1f} KiB)")


def target(row: Row, ratio: float) -> str:
    """Issue 17's target for an MPD row (reported, never asserted)."""
    from report import median_wall, verdict  # report imports this module
    ours = row.ours
    if row.scenario == FIRST:
        wall = median_wall(ours)
        cpu = statistics.median(s.cpu_s for s in ours.samples)
        files = ours.samples[-1].summary["files_found"]
        return (f"first full scan at most 2.5x MPD's first update: {ratio:.2f}x -> "
                f"{verdict(ratio <= 2.5)}; cores busy {cpu / wall:.2f} (>= 1.8 -> "
                f"{verdict(cpu / wall >= 1.8)}); {cpu / files * 1e6:.0f} µs CPU a file "
                f"(<= 350 -> {verdict(cpu / files * 1e6 <= 350)})")
    if row.scenario in (NO_CHANGE, SERVICE):
        return (f"{row.scenario.split(': ')[1]} no slower than MPD's update (the target is "
                f"at 55k files; here {row.reference.files:,}): {ratio:.2f}x -> "
                f"{verdict(ratio <= 1.0)}")
    if row.scenario == RETAGGED:
        return (f"1% retagged within 1.5x MPD (the target is at 10k): {ratio:.2f}x -> "
                f"{verdict(ratio <= 1.5)}")
    if row.scenario == LIVE:
        p95 = latency.p95([s.wall_s for s in ours.samples])
        return f"album visible with tags within 1.0 s p95: {p95:.2f} s -> {verdict(p95 <= 1.0)}"
    return ""
