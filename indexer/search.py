"""`indexer search`: a small query language over the full-text index of tags.

    beatles                 any of title, artist, album, album artist, genre
    "abbey road"            a phrase
    artist:beatles          one field (title, artist, album, album_artist, genre)
    year:1969  year:1965-1970
    yest*                   a prefix

Every word becomes a quoted FTS5 string, so no input is read as FTS syntax;
field filters become FTS5 column filters, years a plain SQL condition.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

FIELDS = {"title": "title", "artist": "artist", "album": "album", "album_artist": "album_artist",
          "albumartist": "album_artist", "genre": "genre"}


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
        if colon and field.lower() == "year":
            where.append(_years(value, args))
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
            f"SELECT file_id FROM media WHERE {query.where} ORDER BY year, album, track_no",
            query.args)]
    yield from _present(conn, ids, limit)


def _present(conn: sqlite3.Connection, ids: list[int], limit: int) -> Iterator[dict]:
    """The `tracks` rows of these files, in order, leaving out those not present."""
    names = [d[0] for d in conn.execute("SELECT * FROM tracks LIMIT 0").description]
    found = 0
    for file_id in ids:
        row = conn.execute("SELECT * FROM tracks WHERE id = ?", (file_id,)).fetchone()
        if row is not None:
            yield dict(zip(names, row))
            found += 1
            if found >= limit:
                return
