"""The debouncer on a clock driven by hand: when a place is handed on."""

from __future__ import annotations

from indexer.debounce import Debouncer


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def debouncer(quiet: float = 1.0, max_wait: float = 10.0,
              quick: float | None = None) -> tuple[Debouncer, Clock]:
    clock = Clock()
    return Debouncer(quiet, max_wait, clock, quick=quick), clock


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


def test_a_place_whose_last_event_completes_a_file_waits_only_the_short_window():
    places, clock = debouncer(quick=0.2)
    places.touch("album")  # written
    places.touch("album", complete=True)  # closed by its writer
    clock.now += 0.19
    assert places.due() == []
    clock.now += 0.01
    assert places.due() == ["album"]


def test_a_write_after_the_close_brings_back_the_whole_window():
    places, clock = debouncer(quick=0.2)
    places.touch("album", complete=True)
    places.touch("album")  # the next file of the album is being written
    clock.now += 0.5
    assert places.due() == []
    clock.now += 0.5
    assert places.due() == ["album"]


def test_a_close_ends_the_wait_for_a_copy_to_settle():
    places, clock = debouncer(quick=0.2)
    places.defer("album", 5.0)  # a file there was still being written
    clock.now += 1.0
    places.touch("album", complete=True)  # and now its writer closed it
    clock.now += 0.2
    assert places.due() == ["album"]


def test_the_short_window_is_never_longer_than_the_quiet_one():
    places, clock = debouncer(quiet=0.1, quick=0.5)
    places.touch("album", complete=True)
    clock.now += 0.1
    assert places.due() == ["album"]


def test_a_close_heard_while_a_scan_ran_is_not_put_off_by_that_scans_wait():
    places, clock = debouncer(quick=0.2)
    began = clock.now  # a scan begins: it will see a file there still being written
    clock.now += 0.1
    places.touch("album", complete=True)  # meanwhile its writer closed it
    clock.now += 0.05
    places.defer("album", 1.0, since=began)  # the scan ends, asking to wait for it
    clock.now += 0.15
    assert places.due() == ["album"]
    places.touch("album")  # a write, no close since this scan began: the wait holds
    later = clock.now
    places.defer("album", 1.0, since=later)
    clock.now += 0.9
    assert places.due() == []
    clock.now += 0.1
    assert places.due() == ["album"]
