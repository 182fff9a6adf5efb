"""The metadata stage's function with a count of the bytes it read, for bench/visual.py:
run in the scan's worker processes, it reads /proc/self/io before and after each file."""

from __future__ import annotations

from indexer import names, photo
from indexer.metadata import read_tags
from indexer.records import TagJob

# What a worker loads once, loaded before counting: PyAV, Pillow's plugins, pillow-heif,
# guessit (its first call reads its rules), so each file's count is that file's reads.
names.guess("/warm/Show/Season 01/Show.S01E01.mkv")
photo._register_heif()
photo.Image.init()


def _rchar() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def read_counting(job: TagJob) -> tuple[str | None, int]:
    """(the file's error or None, bytes this worker read for it)."""
    before = _rchar()
    tags = read_tags(job)
    return tags.error, _rchar() - before
