"""Commands that read no media never import the libraries that read it: PyAV, Pillow,
pillow-heif and guessit cost 50 to 100 ms of start-up each (docs/benchmarks.md), and
`indexer status` and `indexer changes` run often, from scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env, indexer
from images import make_image
from videos import make_video

MEDIA_LIBRARIES = ("av", "PIL", "pillow_heif", "guessit", "rebulk", "babelfish", "mutagen")

# Runs one command in this process, then says which of those libraries it imported.
RUN = """
import json, sys
from indexer.cli import main
sys.argv = ["indexer", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
sys.__stderr__.write("LOADED " + json.dumps(loaded) + "\\n")
""" % (MEDIA_LIBRARIES,)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> tuple[Path, dict]:
    """A catalogue of a video and a photo, scanned by the real command."""
    tmp = tmp_path_factory.mktemp("startup")
    make_video(tmp / "lib" / "film.mkv")
    make_image(tmp / "lib" / "photo.jpg")
    env = cli_env(tmp)
    db = tmp / "library.db"
    indexer("scan", tmp / "lib", "--db", db, env=env, check=True)
    return db, env


@pytest.mark.parametrize("command", [
    ["status"], ["changes"], ["ls", "--kind", "video"], ["show", "{lib}/film.mkv"],
    ["search", "kind:video"], ["dupes"], ["config"],
])
def test_a_command_that_reads_no_media_imports_no_media_library(catalogue, command):
    db, env = catalogue
    args = [a.format(lib=db.parent / "lib") for a in command]
    result = subprocess.run([sys.executable, "-c", RUN, *args, "--db", str(db)], env=env,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    loaded = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    assert loaded, result.stderr
    assert json.loads(loaded[-1][len("LOADED "):]) == [], command
    assert "Traceback" not in result.stderr


def test_a_scan_of_videos_and_photos_in_this_process_does_import_them(catalogue):
    """The check above can fail: a command that reads media imports them."""
    db, env = catalogue
    result = subprocess.run([sys.executable, "-c", RUN, "scan", "--sequential", "--rehash",
                             str(db.parent / "lib"), "--db", str(db)], env=env,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    loaded = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    assert set(json.loads(loaded[-1][len("LOADED "):])) >= {"av", "PIL", "pillow_heif"}
