"""The debouncer on a clock driven by hand: when a place is handed on."""

from __future__ import annotations

from indexer.debounce import Debouncer


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def debouncer(quiet: float = 1.0, max_wait: float = 10.0) -> tuple[Debouncer, Clock]:
    clock = Clock()
    return Debouncer(quiet, max_wait, clock), clock


def test_a_place_is_handed_on_once_quiet_for_the_window():
    places, clock = debouncer()
    places.touch("album")
    clock.now += 0.9
    places.touch("album")
    clock.now += 0.9
    assert places.due() == []
    clock.now += 0.1
    assert places.due() == ["album"] and len(places) == 0


def test_a_place_under_constant_change_is_handed_on_at_max_wait():
    places, clock = debouncer()
    for _ in range(20):
        places.touch("album")
        clock.now += 0.5
    assert places.due() == ["album"]  # 10 s after its first event, though never quiet


def test_a_deferred_place_waits_even_for_its_events():
    places, clock = debouncer()
    places.defer("copy", 5)
    clock.now += 2
    places.touch("copy")
    clock.now += 1.5
    assert places.due() == []
    clock.now += 1.5
    assert places.due() == ["copy"]


def test_a_place_asked_for_later_comes_then_or_sooner_on_an_event():
    places, clock = debouncer()
    places.later("tags", 10)
    places.later("tags again", 10)
    clock.now += 9.9
    assert places.due() == []
    clock.now += 0.1
    assert sorted(places.due()) == ["tags", "tags again"]
    places.later("tags", 10)
    clock.now += 2
    places.touch("tags")  # a change there: it never waits for the retry
    clock.now += 1
    assert places.due() == ["tags"]
