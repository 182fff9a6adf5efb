"""Datasette as the catalogue's web UI and JSON API: the real `datasette serve`, started as
the README says (read-only, 127.0.0.1, the metadata file installed with the package), on a
catalogue made by a real scan of real FLAC files, read over HTTP.

Skipped only where Datasette is not installed; the test extra installs it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mutagen.flac import FLAC

from conftest import DATA, cli_env, connect, wait_for
from indexer import Manager

pytest.importorskip("datasette")

COVER = (DATA / "cover.jpg").read_bytes()


def track(path: Path, title: str, artist: str, album: str, number: int, year: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "tone.flac", path)
    audio = FLAC(path)
    audio.clear()
    audio.update(title=title, artist=artist, album=album, tracknumber=str(number),
                 date=str(year))
    audio.save()
    return path


class Catalogue:
    """A library of two albums, a copy, a file that is no FLAC and one deleted; scanned."""

    def __init__(self, root: Path, db: Path):
        self.root, self.db = root, db
        nina, beatles = root / "Nina Simone" / "Pastel Blues", root / "The Beatles" / "Abbey Road"
        self.nina = [track(nina / "01.flac", "Be My Husband", "Nina Simone", "Pastel Blues", 1, 1965),
                     track(nina / "02.flac", "Sinnerman", "Nina Simone", "Pastel Blues", 2, 1965)]
        self.beatles = [
            track(beatles / "01.flac", "Come Together", "The Beatles", "Abbey Road", 1, 1969),
            track(beatles / "02.flac", "Something", "The Beatles", "Abbey Road", 2, 1969)]
        (beatles / "cover.jpg").write_bytes(COVER)
        self.copy = root / "Copies" / "Come Together.flac"
        self.copy.parent.mkdir()
        shutil.copyfile(self.beatles[0], self.copy)
        self.broken = root / "Broken" / "notes.flac"
        self.broken.parent.mkdir()
        self.broken.write_text("my notes, not a FLAC file\n")
        self.gone = track(root / "Gone" / "gone.flac", "Gone", "Nobody", "Lost", 1, 2000)
        self.scan()
        self.seq_before_delete = self.last_seq()
        self.gone.unlink()
        self.scan()

    def scan(self) -> None:
        result = Manager(db_path=self.db, roots=[str(self.root)], env={}, parallel=False).scan()
        assert result.status == "completed"

    def query(self, sql: str, *args) -> list[tuple]:
        with connect(self.db) as conn:
            return [tuple(r) for r in conn.execute(sql, args)]

    def last_seq(self) -> int:
        return self.query("SELECT max(seq) FROM changes")[0][0]

    def id_of(self, path: Path) -> int:
        return self.query("SELECT id FROM files WHERE path = ?", str(path))[0][0]


def readme_command(db: Path, metadata: Path) -> list[str]:
    """The README's `datasette serve` command, for this catalogue and the installed metadata."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    [line] = [c for c in re.findall(r"```sh\n(.*?)\n```", readme) if "bin/datasette serve " in c]
    args = shlex.split(line)[2:]  # after `.venv/bin/datasette serve`
    assert args[1:3] == ["--metadata", "indexer/datasette.yaml"]
    assert "--immutable" not in args and "-i" not in args
    return [str(db), "--metadata", str(metadata), *args[3:]]


class Datasette:
    """`datasette serve` as the README starts it, on a free port of 127.0.0.1."""

    def __init__(self, db: Path, home: Path):
        metadata = importlib.resources.files("indexer") / "datasette.yaml"
        assert metadata.is_file()  # shipped in the package
        command = readme_command(db, Path(str(metadata)))
        assert command[command.index("--host") + 1] == "127.0.0.1"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        home.mkdir()
        env = cli_env(home, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
        self.log = home / "datasette.log"  # a file: a pipe nobody reads would fill, and block it
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "datasette", "serve", *command, "--port", str(self.port)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            wait_for(lambda: self.proc.poll() is not None or self._up(), timeout=60,
                     what="datasette to answer")
        except AssertionError:
            self.close()
            raise
        assert self.proc.poll() is None, self.log.read_text()

    def _up(self) -> bool:
        try:
            return self.get("/-/versions.json")[0] == 200
        except OSError:
            return False

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def rows(self, path: str) -> list[dict]:
        """The rows of a JSON page, as objects."""
        separator = "&" if "?" in path else "?"
        status, body = self.get(f"{path}{separator}_shape=array&_size=max")
        assert status == 200, body
        return json.loads(body)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Catalogue:
    home = tmp_path_factory.mktemp("datasette")
    return Catalogue(home / "music", home / "state" / "library.db")


@pytest.fixture(scope="module")
def datasette(catalogue, tmp_path_factory):
    server = Datasette(catalogue.db, tmp_path_factory.mktemp("server") / "home")
    yield server
    server.close()


def test_the_tracks_search_box_finds_exactly_the_tracks_that_match(catalogue, datasette):
    found = datasette.rows("/library/tracks.json?_search=nina")
    everything = datasette.rows("/library/tracks.json")
    assert sorted(row["path"] for row in found) == [str(p) for p in catalogue.nina]
    assert len(everything) == 6 > len(found)  # 2 albums, the copy, the file that is no FLAC


def test_the_search_on_tracks_matches_each_word_of_several(catalogue, datasette):
    found = datasette.rows("/library/tracks.json?_search=beatles+something")
    assert [row["path"] for row in found] == [str(catalogue.beatles[1])]


def test_the_media_table_search_finds_its_rows_missing_files_included(catalogue, datasette):
    found = datasette.rows("/library/media.json?_search=gone")
    assert [row["file_id"] for row in found] == [catalogue.id_of(catalogue.gone)]


def test_changes_since_a_seq_are_the_changes_after_it_in_order(catalogue, datasette):
    after = datasette.rows(f"/library/changes_since.json?since={catalogue.seq_before_delete}")
    assert [(c["kind"], c["path"]) for c in after] == [("missing", str(catalogue.gone))]
    assert after[0]["seq"] > catalogue.seq_before_delete
    every = datasette.rows("/library/changes_since.json?since=0")
    assert [c["seq"] for c in every] == [r[0] for r in catalogue.query(
        "SELECT seq FROM changes ORDER BY seq")]
    assert [c["kind"] for c in every].count("added") == 8  # 7 tracks, a cover
    assert [c["kind"] for c in every].count("tagged") == 8  # each, its tags or its error
    assert len(every) == 8 + 8 + 1  # and one gone


def test_the_files_with_errors_query_gives_each_with_its_reason(catalogue, datasette):
    rows = datasette.rows("/library/errors.json")
    assert [(r["id"], r["path"], r["error"]) for r in rows] == [(
        catalogue.id_of(catalogue.broken), str(catalogue.broken),
        "tags: FLACNoHeaderError: the file is not a valid FLAC file")]


def test_the_albums_query_lists_each_album_with_its_year_tracks_folder_and_cover(
        catalogue, datasette):
    rows = datasette.rows("/library/albums.json")
    cover = hashlib.blake2b(COVER, digest_size=16).hexdigest()
    assert [(r["album_artist"], r["album"], r["year"], r["tracks"], r["folder"], r["cover"])
            for r in rows] == [
        ("Nina Simone", "Pastel Blues", 1965, 2, str(catalogue.nina[0].parent), None),
        # with the copy, whose folder comes first by name
        ("The Beatles", "Abbey Road", 1969, 3, str(catalogue.copy.parent), cover),
    ]
    assert all(isinstance(r["minutes"], float) for r in rows)
    assert [r["album"] for r in datasette.rows("/library/albums.json?artist=simone")] == [
        "Pastel Blues"]


def test_the_duplicates_query_gives_every_path_of_the_same_content(catalogue, datasette):
    rows = datasette.rows("/library/duplicates.json")
    size = catalogue.copy.stat().st_size
    assert [(r["path"], r["copies"], r["size"], r["wasted_bytes"]) for r in rows] == [
        (str(catalogue.copy), 2, size, size), (str(catalogue.beatles[0]), 2, size, size)]
    assert len({r["hash"] for r in rows}) == 1


def test_the_missing_files_query_gives_the_deleted_file(catalogue, datasette):
    rows = datasette.rows("/library/missing.json")
    assert [(r["id"], r["path"]) for r in rows] == [
        (catalogue.id_of(catalogue.gone), str(catalogue.gone))]
    assert rows[0]["missing_since"]


@pytest.mark.parametrize("page", ["tracks", "album_artwork", "file_cover", "files", "media",
                                  "videos", "photos", "streams",
                                  "changes", "scan_jobs", "scan_errors", "artwork"])
def test_every_page_of_the_catalogue_loads(datasette, page):
    status, body = datasette.get(f"/library/{page}")
    assert status == 200 and "took too long" not in body


def test_datasette_writes_nothing_to_the_catalogue(catalogue, datasette):
    before = hashlib.sha256(catalogue.db.read_bytes()).hexdigest()
    status, body = datasette.get("/library.json?sql=DELETE+FROM+files")
    assert status == 400 and catalogue.query("SELECT count(*) FROM files") == [(8,)]
    for page in ("tracks", "album_artwork", "errors", "duplicates"):
        datasette.rows(f"/library/{page}.json")
    assert hashlib.sha256(catalogue.db.read_bytes()).hexdigest() == before


def test_datasette_shows_what_a_scan_writes_while_it_runs(tmp_path):
    root, db = tmp_path / "music", tmp_path / "state" / "library.db"
    track(root / "01.flac", "First", "Artist", "Album", 1, 2001)
    Manager(db_path=db, roots=[str(root)], env={}, parallel=False).scan()
    server = Datasette(db, tmp_path / "home")
    try:
        assert [r["title"] for r in server.rows("/library/tracks.json")] == ["First"]
        track(root / "02.flac", "Second", "Artist", "Album", 2, 2001)
        Manager(db_path=db, roots=[str(root)], env={}, parallel=False).scan()
        # not opened immutable: the next page reads the catalogue as it is now
        assert [r["title"] for r in server.rows("/library/tracks.json")] == ["First", "Second"]
    finally:
        server.close()
