"""What the kernel says of a file being complete (watch.Closes) and what the scans make
of it (survey.complete_since, then still_written), on a clock driven by hand."""

from __future__ import annotations

from hypothesis import given, strategies as st

from indexer.records import Seen
from indexer.survey import Signals, complete_since, still_written
from indexer.watch import Closes

S = 10 ** 9
NOW = 1_800_000_000 * S
SETTLE, HOLD = 5 * S, 1 * S


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def closes() -> tuple[Closes, Clock]:
    clock = Clock()
    return Closes(clock), clock


def settled(signals: Signals, path: str, ctime: int, now: int, size: int = 1,
            unwritten=None) -> bool:
    seen = Seen("/m", path, size, 0, 1, 1, ctime, "audio")
    return not still_written(seen, now - SETTLE, now,
                             complete_since(signals, path, now, size, unwritten))


def test_a_file_closed_by_its_writer_is_complete_unless_written_after():
    said, clock = closes()
    said.written("/m/a/x.flac")
    clock.now += S
    said.closed("/m/a/x.flac")
    signals = said.recent(SETTLE, HOLD)
    assert settled(signals, "/m/a/x.flac", clock.now - 1, clock.now + 1)
    assert not settled(signals, "/m/a/x.flac", clock.now + 1, clock.now + 2)  # a later write


def test_a_writer_that_reopens_after_a_close_is_left_to_the_settle_window():
    said, clock = closes()
    said.closed("/m/a/x.flac")
    clock.now += 1
    said.written("/m/a/x.flac")  # reopened
    clock.now += 1
    said.closed("/m/a/x.flac")  # its closes prove nothing now
    signals = said.recent(SETTLE, HOLD)
    assert complete_since(signals, "/m/a/x.flac", clock.now) is None
    assert not settled(signals, "/m/a/x.flac", clock.now - 1, clock.now)
    assert settled(signals, "/m/a/x.flac", clock.now - SETTLE, clock.now)


def test_a_file_written_before_its_new_folders_watch_is_complete_once_the_copy_moved_on():
    said, clock = closes()
    said.armed("/m/New Album")
    arm = clock.now
    path = "/m/New Album/CD1/01.flac"  # written before the watch: no event of its own
    assert not settled(said.recent(SETTLE, HOLD), path, arm - 1, arm + 1)  # a copy going on?
    clock.now += S
    said.closed("/m/New Album/CD1/02.flac")  # the copy wrote the next one, and closed it
    signals = said.recent(SETTLE, HOLD)
    assert settled(signals, path, arm - 1, clock.now)
    assert not settled(signals, path, arm + 1, clock.now)  # written after the watch began
    said.written(path)  # its own events say it is being written
    assert not settled(said.recent(SETTLE, HOLD), path, arm - 1, clock.now)
    assert complete_since(signals, "/m/New Album Two/01.flac", clock.now) is None


def test_a_file_renamed_into_place_is_complete_and_its_old_name_forgotten():
    said, clock = closes()
    said.closed("/m/a/x.flac.part")
    said.written("/m/a/x.flac.part")
    clock.now += 1
    from watchdog.events import FileMovedEvent
    from indexer.watch import _Handler
    handler = _Handler("/m", lambda place, complete=False: None, lambda name: False, said)
    assert handler.note(FileMovedEvent("/m/a/x.flac.part", "/m/a/x.flac"))
    signals = said.recent(SETTLE, HOLD)
    assert signals.closed == {"/m/a/x.flac": clock.now} and not signals.writing


def test_what_is_older_than_the_settle_window_is_forgotten():
    said, clock = closes()
    said.closed("/m/a/old.flac")
    said.armed("/m/old")
    clock.now += SETTLE + 1
    said.closed("/m/a/new.flac")
    signals = said.recent(SETTLE, HOLD)
    assert set(signals.closed) == {"/m/a/new.flac"} and not signals.trees


@given(st.integers(NOW - 3 * SETTLE, NOW), st.integers(NOW - 3 * SETTLE, NOW))
def test_nothing_said_means_the_settle_window_alone_decides(ctime, now):
    empty = Signals({}, frozenset(), {}, frozenset(), HOLD)
    seen = Seen("/m", "/m/a.flac", 1, 0, 1, 1, ctime, "audio")
    assert still_written(seen, now - SETTLE, now, complete_since(empty, "/m/a.flac", now)) == \
        still_written(seen, now - SETTLE, now)


def test_a_folder_moved_in_whole_holds_files_complete_at_once():
    said, clock = closes()
    said.armed("/m/Moved", moved_in=True)
    arm = clock.now
    signals = said.recent(SETTLE, HOLD)
    assert settled(signals, "/m/Moved/CD1/01.flac", arm - 1, arm + 1)
    assert not settled(signals, "/m/Moved/CD1/01.flac", arm + 1, arm + 2)
    said.armed("/m/Moved")  # made anew here since: a copy into it must move on first
    assert not settled(said.recent(SETTLE, HOLD), "/m/Moved/CD1/01.flac", arm - 1, arm + 1)


def test_a_copy_that_ended_before_its_new_folders_watch_began_holds_still_for_the_debounce():
    said, clock = closes()
    said.armed("/m/Quick")  # every file written before the watch: no event, no close
    arm = clock.now
    signals = said.recent(SETTLE, HOLD)
    path = "/m/Quick/01.flac"
    assert not settled(signals, path, arm - 1, arm - 1 + HOLD // 2)
    assert settled(signals, path, arm - 1, arm - 1 + HOLD)
    assert not settled(signals, path, arm - 1, arm - 1 + HOLD, size=0)  # stalled before a write
    assert settled(signals, path, arm - 1, arm - 1 + SETTLE, size=0)  # the settle window, as ever
    assert said.in_tree("/m/Quick/CD1") and not said.in_tree("/m/Other")


def test_a_file_the_kernel_says_no_writer_holds_is_complete_since_its_new_folders_watch():
    said, clock = closes()
    said.armed("/m/Quick")  # a copy that ended before the watch began
    arm = clock.now
    signals = said.recent(SETTLE, HOLD)
    path = "/m/Quick/01.flac"
    assert settled(signals, path, arm - 1, arm + 1, unwritten=lambda p: True)  # no hold
    assert settled(signals, path, arm - 1, arm + 1, size=0, unwritten=lambda p: True)
    assert not settled(signals, path, arm + 1, arm + 2, unwritten=lambda p: True)  # written since
    # no answer: the hold for the debounce, as before
    assert not settled(signals, path, arm - 1, arm + 1, unwritten=lambda p: None)
    assert settled(signals, path, arm - 1, arm - 1 + HOLD, unwritten=lambda p: None)
    # a writer holds it open: the settle window, as any file held open, never the debounce
    assert not settled(signals, path, arm - 1, arm - 1 + HOLD, unwritten=lambda p: False)
    assert not settled(signals, path, arm - 1, arm - 1 + SETTLE - 1, unwritten=lambda p: False)
    assert settled(signals, path, arm - 1, arm - 1 + SETTLE, unwritten=lambda p: False)


@given(st.sampled_from(["closed", "writing", "moved in", "outside", "tree"]),
       st.sampled_from([True, False, None]), st.integers(0, 2 * HOLD), st.integers(0, 1))
def test_the_kernel_is_asked_of_a_file_only_where_nothing_else_was_said(case, answer, later, size):
    said, clock = closes()
    path = "/m/Album/01.flac" if case != "outside" else "/m/Elsewhere/01.flac"
    said.armed("/m/Album", moved_in=case == "moved in")
    if case == "closed":
        said.closed(path)
    elif case == "writing":
        said.written(path)
    asked = []
    signals = said.recent(SETTLE, HOLD)
    now = clock.now + later

    def unwritten(p: str):
        asked.append(p)
        return answer

    with_kernel = complete_since(signals, path, now, size, unwritten)
    assert asked == ([path] if case == "tree" else [])
    if case != "tree" or answer is None:
        assert with_kernel == complete_since(signals, path, now, size)
    else:  # complete since the watch began, or unknown while a writer holds it
        assert with_kernel == (signals.trees["/m/Album"] if answer else None)
