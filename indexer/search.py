"""`indexer search`: a small query language over the full-text index of tags.

    beatles                 any of title, artist, album, album artist, genre, show
    "abbey road"            a phrase
    artist:beatles          one field (title, artist, album, album_artist, genre, show)
    year:1969  year:1965-1970
    season:2  episode:5     a video's season, episode
    kind:video              audio, video or image
    hdr:hdr10               a video's HDR: hdr10, hlg, dolbyvision (dv), any, none
    resolution:2160         a video of 2160 lines (4k), 1080, 720, 576, 480...
    yest*                   a prefix

Every word becomes a quoted FTS5 string, so no input is read as FTS syntax;
field filters become FTS5 column filters, the others plain SQL conditions on
`media`, each from one function of FILTERS.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

FIELDS = {"title": "title", "artist": "artist", "album": "album", "album_artist": "album_artist",
          "albumartist": "album_artist", "genre": "genre", "show": "show"}


class QueryError(ValueError):
    """A query that cannot be understood; the message says which part."""


class Query(NamedTuple):
    match: str  # an FTS5 expression, "" if only filters
    where: str
    args: dict


def parse(text: str) -> Query:
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise QueryError(f"cannot read the query: {error}") from None
    terms, where, args = [], [], {}
    for word in words:
        field, colon, value = word.partition(":")
        if colon and field.lower() in FILTERS:
            where.append(FILTERS[field.lower()](value, args))
        elif colon and field.lower() in FIELDS:
            terms.append(f"{FIELDS[field.lower()]} : {_phrase(value)}")
        elif word:
            terms.append(_phrase(word))
    if not terms and not where:
        raise QueryError("the query is empty")
    return Query(" AND ".join(terms), " AND ".join(where), args)


def _phrase(word: str) -> str:
    prefix = word.endswith("*") and len(word) > 1
    body = word[:-1] if prefix else word
    if not body.strip():
        raise QueryError(f"nothing to search for in {word!r}")
    return '"' + body.replace('"', '""') + '"' + (" *" if prefix else "")


def _years(value: str, args: dict) -> str:
    match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value)
    if not match:
        raise QueryError(f"year:{value}: give a year (1969) or a range (1965-1970)")
    low, high = match.group(1), match.group(2) or match.group(1)
    args["year_low"], args["year_high"] = int(low), int(high)
    return "year BETWEEN :year_low AND :year_high"


def _number(name: str):
    def condition(value: str, args: dict) -> str:
        if not value.isdigit():
            raise QueryError(f"{name}:{value}: give a number ({name}:2)")
        args[name] = int(value)
        return f"{name} = :{name}"
    return condition


KINDS = ("audio", "video", "image")


def _kind(value: str, args: dict) -> str:
    if value.lower() not in KINDS:
        raise QueryError(f"kind:{value}: give one of {', '.join(KINDS)}")
    args["kind"] = value.lower()
    return "file_id IN (SELECT id FROM files WHERE kind = :kind)"


HDR = {"hdr10": "HDR10", "hlg": "HLG", "dolbyvision": "DolbyVision", "dv": "DolbyVision"}


def _hdr(value: str, args: dict) -> str:
    wanted = value.lower().replace(" ", "").replace("-", "")
    if wanted in ("any", "yes"):
        return "hdr IS NOT NULL"
    if wanted in ("none", "no", "sdr"):
        return "hdr IS NULL AND file_id IN (SELECT id FROM files WHERE kind = 'video')"
    if wanted not in HDR:
        raise QueryError(f"hdr:{value}: give hdr10, hlg, dolbyvision, any or none")
    args["hdr"] = HDR[wanted]
    return "hdr = :hdr"


def _resolution(value: str, args: dict) -> str:
    """Videos of N lines: N pixels high, or as wide as a 16:9 frame of N lines (a film
    cropped to 3840x1600 is 2160)."""
    text = value.lower().removesuffix("p")
    lines = {"4k": 2160, "uhd": 2160, "8k": 4320}.get(text) or (int(text) if text.isdigit() else 0)
    if not 100 <= lines <= 10_000:
        raise QueryError(f"resolution:{value}: give a number of lines (2160, 1080p, 720) or 4k")
    args["lines"], args["line_width"] = lines, round(lines * 16 / 9)
    return "(height = :lines OR width = :line_width)"


FILTERS = {"year": _years, "season": _number("season"), "episode": _number("episode"),
           "kind": _kind, "hdr": _hdr, "resolution": _resolution}


def search(conn: sqlite3.Connection, text: str, limit: int = 50) -> Iterator[dict]:
    """Present files whose tags match, best first, with their path."""
    query = parse(text)
    if query.match:
        import sqlite_utils  # imported here: it costs start-up time every other command skips
        rows = sqlite_utils.Database(conn)["media"].search(
            query.match, where=query.where or None, where_args=query.args or None,
            limit=limit * 4, columns=["file_id"])
        ids = [row["file_id"] for row in rows]
    else:
        ids = [r[0] for r in conn.execute(
            f"SELECT file_id FROM media WHERE {query.where} "
            "ORDER BY year, album, track_no, show, season, episode, title, file_id",
            query.args)]
    yield from _present(conn, ids, limit)


def _present(conn: sqlite3.Connection, ids: list[int], limit: int) -> Iterator[dict]:
    """The `tracks` rows of these files, in order, leaving out those not present; a
    video's with its `videos` columns, a photo's its `photos` row (photos are no tracks)."""
    found = 0
    for file_id in ids:
        row = _row(conn, "tracks", "id", file_id)
        if row is not None and row["kind"] == "video":
            row.update(_row(conn, "videos", "file_id", file_id) or {})
            row.pop("file_id", None)
        elif row is None:
            row = _row(conn, "photos", "file_id", file_id)
            if row is not None:
                row = {"id": row.pop("file_id"), "kind": "image", **row}
        if row is not None:
            yield row
            found += 1
            if found >= limit:
                return


def _row(conn: sqlite3.Connection, view: str, key: str, file_id: int) -> dict | None:
    cursor = conn.execute(f"SELECT * FROM {view} WHERE {key} = ?", (file_id,))
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row)) if row is not None else None
