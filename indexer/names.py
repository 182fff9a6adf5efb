"""Show, season, episode, or a film's title and year, from the names users give files
and folders: guessit (the only module that imports it).

    Show Name/Season 02/Show.Name.S02E05.1080p.mkv   show, season 2, episode 5
    Film Title (1999)/Film Title (1999).mkv          title, year 1999

guessit reads names well but slowly: 3 to 9 ms a name here, five times the
probe of a small video (docs/benchmarks.md). So it is asked only where it can
tell us something, and each season once:

- Only names that mark an episode (S02E05, 2x05, "Season", "Episode") give a
  season and episode, and only a file name with a year (1900-2099, not inside a
  longer number) or a folder with one in brackets ("Film Title (1999)") gives a
  film's title and year. guessit also reads bare numbers as episodes ("IMG_1234" is
  season 12, episode 34) and any folder's year as a film's ("Holiday 2019/IMG_1234"
  is the film "Holiday" of 2019): those are not taken. Names with neither mark are not
  given to guessit at all: nothing it said would be taken.
- A file named exactly `Title (Year).ext`, the name Plex, Jellyfin and Kodi ask a film
  to have, is taken as written, without guessit (6 ms a film, measured). guessit would
  take some titles for something else: "Unrated (2009)" has no title but the edition
  "Unrated", "Director's Cut (2016)" none but that edition.
- A file's name that has a mark is parsed alone first (3.9 ms against 6.4 with its
  folders, measured), its folders too only when the name alone says nothing.
- A name `<show part>.S02E05...` in the same folders as one read before, with the
  same show part and season, gets that one's show without a parse: only its
  episode number differs, which guessit reads from the same S..E.. (tests compare
  the two on generated names).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

EPISODE_MARK = re.compile(
    r"(?<![a-z0-9])(?:s\d{1,2}\s?e\d{1,3}|\d{1,2}x\d{2,3})(?![0-9])"
    r"|\b(?:season|series|saison|staffel|temporada|episode|ep)\b", re.IGNORECASE)
YEAR_MARK = re.compile(r"(?<![0-9])(?:19|20)\d\d(?![0-9])")  # in the file's own name
FOLDER_YEAR_MARK = re.compile(r"[(\[](?:19|20)\d\d[)\]]")  # a folder's: "Film Title (1999)"
# `Show.Name.S02E05` then a separator or the end, and no second episode (S02E05E06).
SEASON_EPISODE = re.compile(
    r"^(?P<show>.+?)[ ._-]+[Ss](?P<season>\d{1,2})[Ee](?P<episode>\d{1,3})(?![0-9])"
    r"(?![ ._-]*[Ee]\d)")
# `Film Title (1999)`: the name Plex, Jellyfin and Kodi ask films to have, taken as written.
FILM = re.compile(r"^(?P<title>[^()\[\]{}._/]*?[^\W_][^()\[\]{}._/]*?) "
                  r"\((?P<year>(?:19|20)\d\d)\)$")
MAX_REMEMBERED = 10_000  # shows remembered per worker process


class Guess(NamedTuple):
    show: str | None = None
    season: int | None = None
    episode: int | None = None
    title: str | None = None  # a film's
    year: int | None = None  # a film's


_shows: dict[tuple, str] = {}


def guess(path: str) -> Guess | None:
    """What the last three parts of `path` (show or film folder, season folder, file)
    say, or None when they say nothing this catalogue takes."""
    parts = path.replace("\\", "/").rsplit("/", 3)[-3:]
    text = "/".join(parts)
    episode_marked = bool(EPISODE_MARK.search(text))
    year_marked = bool(YEAR_MARK.search(parts[-1]) or any(FOLDER_YEAR_MARK.search(folder)
                                                           for folder in parts[:-1]))
    if not (episode_marked or year_marked):
        return None
    stem = parts[-1].rsplit(".", 1)[0]
    film = FILM.match(stem)
    if film:
        return Guess(title=film["title"].strip(), year=int(film["year"]))
    match = SEASON_EPISODE.match(stem)
    key = (*parts[:-1], match["show"], int(match["season"])) if match else None
    if key in _shows:
        return Guess(_shows[key], int(match["season"]), int(match["episode"]))
    found = None
    if EPISODE_MARK.search(parts[-1]) or YEAR_MARK.search(parts[-1]):
        # The file's name alone, where it may say all: half the time of the three parts.
        found = taken(_guessit(parts[-1]), episode_marked, year_marked)
    if found is None and len(parts) > 1:
        found = taken(_guessit(text), episode_marked, year_marked)
    if (match and found and found.show and (found.season, found.episode)
            == (int(match["season"]), int(match["episode"])) and len(_shows) < MAX_REMEMBERED):
        _shows[key] = found.show
    return found


def taken(result: dict[str, Any], episode_marked: bool, year_marked: bool) -> Guess | None:
    """What the catalogue takes of guessit's answer (see the module's docstring)."""
    title = _text(result.get("title"))
    if result.get("type") == "episode" and episode_marked and title:
        episode = _number(result.get("episode"))
        if episode is not None:
            return Guess(show=title, season=_number(result.get("season")), episode=episode)
    if result.get("type") == "movie" and year_marked and title:
        year = _number(result.get("year"))
        if year is not None:
            return Guess(title=title, year=year)
    return None


def _guessit(text: str) -> dict[str, Any]:
    from guessit import guessit  # 60 ms to import: only workers that read such a name pay it
    try:
        return dict(guessit(text))
    except Exception:  # guessit's own bug on an odd name: the name tells nothing, then
        return {}


def _number(value: Any) -> int | None:
    if isinstance(value, list):  # S02E05E06: the first
        value = value[0] if value else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value.strip() or None if isinstance(value, str) else None
