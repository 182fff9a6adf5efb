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
