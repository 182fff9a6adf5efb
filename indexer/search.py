"""`indexer search`: a small query language over the full-text index of tags.

    beatles                 any of title, artist, album, album artist, genre, show
    "abbey road"            a phrase
    artist:beatles          one field (title, artist, album, album_artist, genre, show)
    artist:"the beatles"    a phrase in one field
    year:1969  year:1965-1970
    season:2  episode:5     a video's season, episode
    kind:video              audio, video or image
    hdr:hdr10               a video's HDR: hdr10, hlg, dolbyvision (dv), any, none
    resolution:2160         a video of 2160 lines (4k), 1080, 720, 576, 480...
    yest*                   a prefix
    -live  -year:1970       not this

Every word becomes a quoted FTS5 string, so no input is read as FTS syntax;
field filters become FTS5 column filters, the others plain SQL conditions on
`media`, each from one function of FILTERS. A `name:` that is no field is an
error (quote the word to search for it as written).
"""

from __future__ import annotations

import re
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


# an optional "-", an optional "field:", then a "quoted phrase" ("" inside for ") or a word
_TOKEN = re.compile(r'(-?)(?:([A-Za-z_]+):)?(?:"((?:[^"]|"")*)"|(\S+))')


def parse(text: str) -> Query:
    terms, excluded, where, args = [], [], [], {}
    at = 0
    while (at := _skip_spaces(text, at)) < len(text):
        token = _TOKEN.match(text, at)
        if token is None or (token.end() < len(text) and not text[token.end()].isspace()):
            raise QueryError(f"cannot read the query from {text[at:]!r}: close each quote")
        at = token.end()
        minus, field, quoted, bare = token.groups()
        if bare is not None and '"' in bare:
            raise QueryError(f"cannot read the query from {text[token.start():]!r}: close "
                             "each quote")
        value = quoted.replace('""', '"') if quoted is not None else bare
        name = field.lower() if field else None
        if name in FILTERS:
            condition = FILTERS[name](value, args, token.group(0))
            where.append(f"NOT ({condition})" if minus else condition)
            continue
        if name is not None and name not in FIELDS:
            raise QueryError(f"{token.group(0)}: no field {field!r}; the fields are "
                             f"{', '.join(sorted({*FIELDS.values(), *FILTERS}))} (to search "
                             f"for the text, quote it: \"{field}:{value}\")")
        term = _phrase(value, phrase=quoted is not None)
        term = f"{FIELDS[name]} : {term}" if name else term
        (excluded if minus else terms).append(term)
    if excluded and not terms:
        raise QueryError("only words to leave out: give a word to search for too")
    if not terms and not where:
        raise QueryError("the query is empty")
    match = " AND ".join(terms)
    if excluded:
        match = f"({match}) NOT " + " NOT ".join(excluded)
    return Query(match, " AND ".join(where), args)


def _skip_spaces(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _phrase(word: str, phrase: bool = False) -> str:
    prefix = not phrase and word.endswith("*") and len(word) > 1
    body = word[:-1] if prefix else word
    if not body.strip():
        raise QueryError(f"nothing to search for in {word!r}")
    return '"' + body.replace('"', '""') + '"' + (" *" if prefix else "")


def _arg(args: dict, value: object) -> str:
    """A new named parameter holding `value`: each condition has its own, however many."""
    name = f"p{len(args)}"
    args[name] = value
    return f":{name}"


def _years(value: str, args: dict, token: str) -> str:
    match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value)
    if not match:
        raise QueryError(f"{token}: give a year (1969) or a range (1965-1970)")
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if low > high:
        raise QueryError(f"{token}: the range runs backwards; give year:{high}-{low}")
    return f"year BETWEEN {_arg(args, low)} AND {_arg(args, high)}"


def _number(name: str):
    def condition(value: str, args: dict, token: str) -> str:
        if not value.isdigit():
            raise QueryError(f"{token}: give a number ({name}:2)")
        return f"{name} = {_arg(args, int(value))}"
    return condition


KINDS = ("audio", "video", "image")


def _kind(value: str, args: dict, token: str) -> str:
    if value.lower() not in KINDS:
        raise QueryError(f"{token}: give one of {', '.join(KINDS)}")
    return f"file_id IN (SELECT id FROM files WHERE kind = {_arg(args, value.lower())})"


HDR = {"hdr10": "HDR10", "hlg": "HLG", "dolbyvision": "DolbyVision", "dv": "DolbyVision"}


def _hdr(value: str, args: dict, token: str) -> str:
    wanted = value.lower().replace(" ", "").replace("-", "")
    if wanted in ("any", "yes"):
        return "hdr IS NOT NULL"
    if wanted in ("none", "no", "sdr"):
        return "hdr IS NULL AND file_id IN (SELECT id FROM files WHERE kind = 'video')"
    if wanted not in HDR:
        raise QueryError(f"{token}: give hdr10, hlg, dolbyvision, any or none")
    return f"hdr = {_arg(args, HDR[wanted])}"


def _resolution(value: str, args: dict, token: str) -> str:
    """Videos of N lines: N pixels high, or as wide as a 16:9 frame of N lines (a film
    cropped to 3840x1600 is 2160)."""
    text = value.lower().removesuffix("p")
    lines = {"4k": 2160, "uhd": 2160, "8k": 4320}.get(text) or (int(text) if text.isdigit() else 0)
    if not 100 <= lines <= 10_000:
        raise QueryError(f"{token}: give a number of lines (2160, 1080p, 720) or 4k")
    return f"(height = {_arg(args, lines)} OR width = {_arg(args, round(lines * 16 / 9))})"


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
