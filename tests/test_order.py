"""Path order (indexer/order.py): folder ranges and the cuts of a root into parts hold for
the names real libraries have, prefix siblings above all ("Foo", "Foo Bar", "Foo/x")."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from indexer import order

# Characters on both sides of "/" (0x2F) and "0" (0x30), where prefix siblings go wrong.
NAME_CHARS = st.sampled_from(list(" !#(+,-.0Aaz~_é\u0301\U0001F3B5"))
names = st.text(NAME_CHARS, min_size=1, max_size=4).filter(lambda n: n not in (".", ".."))
# Names that are prefixes of each other: "Foo", "Foo Bar", "Foo (Live)", ...
stems = st.sampled_from(["Foo", "Fo", "Foo ", "Foo.", "Foo-", "Foo0", "Foo (Live)", "Foo Bar"])
tops = st.lists(st.one_of(stems, names, st.builds(str.__add__, stems, names)),
                max_size=12, unique=True)
relative_dirs = st.lists(st.lists(st.one_of(stems, names), min_size=1, max_size=3),
                         max_size=20).map(lambda paths: ["/".join(p) for p in paths])

ROOT = "/srv/music"


def _folders(top_names: list[str], extra: list[str]) -> list[str]:
    """Folder texts below the root: each top, folders inside tops, and folders of no top."""
    inside = [f"{ROOT}/{top}/{rest}" for top in top_names[:3] for rest in extra[:5]]
    return [f"{ROOT}/{top}" for top in top_names] + inside + [f"{ROOT}/{d}" for d in extra]


@given(st.one_of(stems, names), st.lists(st.one_of(stems, names), min_size=1, max_size=3))
def test_a_folders_ranges_hold_exactly_it_and_what_is_inside_it(top, rest):
    top_text, other = f"{ROOT}/{top}", f"{ROOT}/{'/'.join(rest)}"
    only, below = order.subtree(top_text)
    assert order.in_range(other, only) == (other == top_text)
    assert order.in_range(other, below) == (other.startswith(top_text + "/"))
    assert order.within(other, top_text) == (order.in_range(other, only)
                                              or order.in_range(other, below))


@settings(max_examples=300)
@given(tops, relative_dirs, st.integers(1, 6))
def test_cuts_answer_for_every_folder_below_the_root_exactly_once(top_names, extra, parts):
    outer = order.below(ROOT)
    cut = order.cuts([f"{ROOT}/{t}" for t in top_names], outer, parts)

    assert cut[0][1][0] == outer[0] and cut[-1][1][1] == outer[1]
    assert all(a[1][1] == b[1][0] for a, b in zip(cut, cut[1:]))  # contiguous, in order
    assert all(low < high for _, (low, high) in cut)
    assert sorted(t for group, _ in cut for t in group) == sorted({f"{ROOT}/{t}" for t in top_names})
    for folder in _folders(top_names, extra):
        holders = [bounds for _, bounds in cut if order.in_range(folder, bounds)]
        assert len(holders) == 1, folder
        for group, bounds in cut:
            if any(order.within(folder, top) for top in group):
                assert order.in_range(folder, bounds), (folder, group)


@given(tops, st.integers(1, 6))
def test_cuts_make_about_the_parts_asked_for(top_names, parts):
    cut = order.cuts([f"{ROOT}/{t}" for t in top_names], order.below(ROOT), parts)
    assert 1 <= len(cut) <= max(parts, 1) + 1


def test_prefix_siblings_are_never_cut_apart_from_a_folder_inside_their_first():
    siblings = [f"{ROOT}/{name}" for name in ("Foo", "Foo (Live)", "Foo Bar", "Foo-Bar", "Foo.")]
    cut = order.cuts(siblings, order.below(ROOT), parts=5)
    (group, bounds), = [(g, b) for g, b in cut if f"{ROOT}/Foo" in g]
    assert order.in_range(f"{ROOT}/Foo/Album", bounds)
    assert set(siblings) <= set(group)


def test_with_no_folder_below_the_root_one_part_answers_for_everything_below_it():
    assert order.cuts([], order.below(ROOT), parts=8) == [([], order.below(ROOT))]


# --- merging places to scan (survey.merged): one owner, linear, nothing lost

from indexer.survey import Part, folder_only, merged, tree, vanished  # noqa: E402

KINDS = {"tree": tree, "folder": folder_only, "gone": vanished}
places = st.lists(st.tuples(st.sampled_from(list(KINDS)),
                            st.lists(st.one_of(stems, names), min_size=0, max_size=3)),
                  max_size=14)


def _parts(chosen) -> list[Part]:
    """As the service makes them at one instant: a folder is there (walked) or gone, and
    nothing is there inside a folder that is gone."""
    parts = [KINDS[kind](ROOT, "/".join([ROOT, *rest])) for kind, rest in chosen]
    gone = [p.ranges[0][0] for p in parts if not p.tops]
    there = [p for p in parts if p.tops and not any(order.within(p.tops[0], g) for g in gone)]
    return there + [p for p in parts if not p.tops]


def _answers(parts: list[Part], folder: str) -> list[Part]:
    """The parts that walk `folder` or answer for its rows."""
    found = []
    for part in parts:
        walks = part.tops and (order.within(folder, part.tops[0]) if part.recursive
                               else folder == part.tops[0])
        if walks or not part.tops and any(order.in_range(folder, r) for r in part.ranges):
            found.append(part)
    return found


@settings(max_examples=400)
@given(places, st.randoms())
def test_merged_places_answer_for_every_folder_once_whatever_their_order(chosen, rng):
    parts = _parts(chosen)
    kept = merged(parts)
    shuffled = parts + parts[: len(parts) // 2]  # copies of a place count once
    rng.shuffle(shuffled)
    assert sorted(merged(shuffled)) == sorted(kept)
    folders = {p.tops[0] if p.tops else p.ranges[0][0] for p in parts}
    for folder in folders | {f + "/x" for f in folders}:
        if _answers(parts, folder):  # asked for: answered, and by one part only
            walked = [p for p in _answers(kept, folder) if p.tops]
            assert len(_answers(kept, folder)) == 1 or len(walked) == 1, folder


def test_a_folder_walked_wins_over_the_same_folder_vanished():
    album = f"{ROOT}/Album"
    assert merged([vanished(ROOT, album), folder_only(ROOT, album)]) == [folder_only(ROOT, album)]
    assert merged([vanished(ROOT, album), tree(ROOT, album)]) == [tree(ROOT, album)]


def test_the_same_new_folder_queued_twice_is_scanned():
    queued = [tree(ROOT, f"{ROOT}/New Album"), tree(ROOT, f"{ROOT}/New Album")]  # two events
    assert merged(queued) == [tree(ROOT, f"{ROOT}/New Album")]


def test_twenty_thousand_places_merge_in_well_under_a_second():
    import time
    parts = [folder_only(ROOT, f"{ROOT}/Artist {n // 10}/Album {n}") for n in range(20_000)]
    parts += [tree(ROOT, f"{ROOT}/Artist {n}") for n in range(0, 2_000, 7)]
    started = time.process_time()
    kept = merged(parts)
    assert time.process_time() - started < 1.0
    assert len(kept) == 20_000 - 10 * len(range(0, 2_000, 7)) + len(range(0, 2_000, 7))


# --- settling (survey.still_written): one rule, by the ctime the kernel sets

from indexer.records import Seen  # noqa: E402
from indexer.survey import CLOCK_SKEW_NS, still_written  # noqa: E402

NOW = 1_800_000_000 * 10 ** 9
SETTLE = 5 * 10 ** 9


@given(st.integers(-10 ** 19, 10 ** 19), st.integers(NOW - 10 * SETTLE, NOW + 10 * SETTLE))
def test_a_file_settles_by_its_ctime_whatever_its_mtime(mtime, ctime):
    seen = Seen("/m", "/m/a.mp3", 1, mtime, 1, 1, ctime, "audio")
    expected = NOW - SETTLE < ctime <= NOW + CLOCK_SKEW_NS
    assert still_written(seen, NOW - SETTLE, NOW) == expected
    assert still_written(seen._replace(mtime_ns=0), NOW - SETTLE, NOW) == expected


@given(st.integers(NOW - 10 * SETTLE, NOW + 10 * SETTLE),
       st.integers(NOW - 10 * SETTLE, NOW + 10 * SETTLE))
def test_a_file_closed_by_its_writer_and_not_written_since_has_settled(ctime, closed_at):
    seen = Seen("/m", "/m/a.mp3", 1, 0, 1, 1, ctime, "audio")
    if ctime <= closed_at:  # no write after the close: complete, at once
        assert not still_written(seen, NOW - SETTLE, NOW, closed_at)
    else:  # written after its close (a writer that reopened): the settle window, as ever
        assert still_written(seen, NOW - SETTLE, NOW, closed_at) == still_written(
            seen, NOW - SETTLE, NOW)
