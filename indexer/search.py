"""`indexer search`: a small query language over the full-text index of tags.

    beatles                 any of title, artist, album, album artist, genre
    "abbey road"            a phrase
    artist:beatles          one field (title, artist, album, album_artist, genre)
    artist:"the beatles"    a phrase in one field
    year:1969  year:1965-1970
    yest*                   a prefix
    -live  -year:1970       not this

Every word becomes a quoted FTS5 string, so no input is read as FTS syntax;
field filters become FTS5 column filters, years a plain SQL condition. A `name:`
that is no field is an error (quote the word to search for it as written).
"""

from __future__ import annotations

import re
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
        if name == "year":
            condition = _years(value, args, token.group(0))
            where.append(f"NOT ({condition})" if minus else condition)
            continue
        if name is not None and name not in FIELDS:
            raise QueryError(f"{token.group(0)}: no field {field!r}; the fields are "
                             f"{', '.join(sorted(set(FIELDS.values())))}, year (to search for "
                             f"the text, quote it: \"{field}:{value}\")")
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


def _years(value: str, args: dict, token: str) -> str:
    match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value)
    if not match:
        raise QueryError(f"{token}: give a year (1969) or a range (1965-1970)")
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if low > high:
        raise QueryError(f"{token}: the range runs backwards; give year:{high}-{low}")
    n = len(args) // 2
    args[f"year_low{n}"], args[f"year_high{n}"] = low, high
    return f"year BETWEEN :year_low{n} AND :year_high{n}"


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
