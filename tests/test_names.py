"""Names as people give them: what indexer/names.py takes from guessit, and its two fast
paths (no guessit for names without a mark; one guessit per season folder), each
compared with guessit itself."""

from __future__ import annotations

import pytest
from guessit import guessit
from hypothesis import given, settings, strategies as st

from indexer import names
from indexer.names import Guess


@pytest.fixture(autouse=True)
def forget_shows():
    names._shows.clear()
    yield
    names._shows.clear()


@pytest.mark.parametrize("path, found", [
    ("/tv/Show Name/Season 02/Show.Name.S02E05.1080p.mkv", Guess("Show Name", 2, 5)),
    ("/films/Film Title (1999)/Film Title (1999).mkv", Guess(title="Film Title", year=1999)),
    ("/films/Film Title (1999)/movie.mkv", Guess(title="Film Title", year=1999)),
    ("/tv/Doctor Who (2005)/Series 1/Doctor Who - 1x01 - Rose.avi", Guess("Doctor Who", 1, 1)),
    ("/tv/Show Name/Season 2/Episode 5.mkv", Guess("Show Name", 2, 5)),
    ("/tv/Show.Name.S02E05E06.mkv", Guess("Show Name", 2, 5)),  # a double episode: its first
    ("/films/Blade.Runner.2049.2017.2160p.UHD.BluRay.x265.mkv",
     Guess(title="Blade Runner 2049", year=2017)),
])
def test_the_usual_names_of_episodes_and_films_are_read(path, found):
    assert names.guess(path) == found


@pytest.mark.parametrize("stem, title, year", [
    ("Film Title (1999)", "Film Title", 1999),
    ("Unrated (2009)", "Unrated", 2009),  # guessit: no title, the edition "Unrated"
    ("Director's Cut (2016)", "Director's Cut", 2016),  # guessit: no title, an edition
    ("Cars 2 (2011)", "Cars 2", 2011),
    ("Amélie (2001)", "Amélie", 2001),
    ("2001 A Space Odyssey (1968)", "2001 A Space Odyssey", 1968),
])
def test_a_film_named_title_and_year_in_brackets_is_taken_as_written(stem, title, year):
    assert names.guess(f"/films/{stem}/{stem}.mkv") == Guess(title=title, year=year)


@pytest.mark.parametrize("path", [
    "/phone/IMG_1234.MOV",  # guessit: season 12, episode 34
    "/phone/Holiday 2019/IMG_1234.mp4",  # guessit: the film "Holiday" of 2019
    "/phone/VID_20190714_123456.mp4",
    "/home/Birthday party.mkv",
    "/home/clip.mp4",
    "/anime/Show - 05.mkv",  # no mark of an episode: guessit's episode 5 is not taken
])
def test_names_without_a_mark_of_an_episode_or_a_year_give_nothing(path):
    assert names.guess(path) is None


WORDS = st.sampled_from(["Breaking", "Bad", "Game", "of", "Thrones", "The", "Wire", "Office",
                         "Doctor", "Who", "Mad", "Men", "Lost", "House", "Dark", "Sherlock",
                         "Crown", "Succession", "Fargo", "Friends", "Girls", "Atlanta"])
SHOWS = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)
EXTRAS = st.sampled_from(["", ".1080p", ".720p.WEB-DL", ".2160p.x265", ".HDTV.x264",
                          ".Pilot", ".The.Beginning.1080p", "-GROUP"])
SEPARATORS = st.sampled_from([".", " ", "_"])


@settings(max_examples=40, deadline=None)
@given(show=SHOWS, season=st.integers(0, 40), episodes=st.lists(st.integers(0, 99), min_size=2,
                                                                 max_size=3, unique=True),
       extra=EXTRAS, separator=SEPARATORS, folder=st.sampled_from(["Season {:02d}", "S{:02d}",
                                                                    "Season {}"]))
def test_episodes_named_alike_in_a_season_folder_get_what_guessit_says_of_each(
        show, season, episodes, extra, separator, folder):
    """The second episode of a season folder gets the first's show without a parse:
    the same answer guessit gives it."""
    names._shows.clear()
    base = show.replace(" ", separator)
    for episode in episodes:
        name = f"{base}{separator}S{season:02d}E{episode:02d}{extra}.mkv"
        text = f"{show}/{folder.format(season)}/{name}"
        expected = names.taken(dict(guessit(text)), True, False)
        assert names.guess("/tv/" + text) == expected, text


def test_a_season_folder_is_parsed_once_then_remembered():
    names.guess("/tv/Show Name/Season 02/Show.Name.S02E05.1080p.mkv")
    assert names._shows == {("Show Name", "Season 02", "Show.Name", 2): "Show Name"}
    assert names.guess("/tv/Show Name/Season 02/Show.Name.S02E06.1080p.mkv") == Guess(
        "Show Name", 2, 6)
