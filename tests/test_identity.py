"""Identity (indexer/identity.py): which row a file is, decided by one pure function, and
the order in which rows change paths (indexer/placing.py), on plain values."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from indexer.identity import Arrival, Candidate, device_now, match, same_file
from indexer.placing import MOVING, move_order


def arrival(path, inode, hash="h", size=1, ctime=10, btime=None, path_row=None, device=1):
    return Arrival(path, device, inode, size, hash, ctime, btime, path_row)


def row(id, path, inode, hash="h", size=1, ctime=10, vacated=True, device=1):
    return Candidate(id, path, device, inode, size, hash, ctime, vacated)


# --- the rules, one at a time

def test_a_file_with_the_rows_inode_and_ctime_is_that_row():
    assert match([arrival("/m/b", 5)], [row(1, "/m/a", 5)]).rows == {0: 1}


def test_a_renamed_and_edited_file_is_its_row_when_born_before_the_rows_ctime():
    edited = arrival("/m/b", 5, hash="new", ctime=30, btime=2)
    assert match([edited], [row(1, "/m/a", 5, ctime=10)]).rows == {0: 1}


def test_a_new_file_that_reused_an_inode_number_is_not_the_old_row():
    newborn = arrival("/m/b", 5, hash="new", ctime=30, btime=20)
    assert match([newborn], [row(1, "/m/a", 5, ctime=10)]).rows == {}


def test_a_disk_back_under_another_device_number_is_known_by_a_file_left_untouched():
    untouched = row(1, "/m/a", 5, size=3, ctime=10, device=1)
    assert device_now(untouched, 2, 5, 3, 10) == 2
    assert device_now(untouched, 1, 5, 3, 10) is None  # the same number: nothing to do
    assert device_now(untouched, 2, 6, 3, 10) is None  # another inode: another file
    assert device_now(untouched, 2, 5, 4, 10) is None  # edited: no proof
    assert device_now(untouched, 2, 5, 3, 11) is None  # its ctime moved on: no proof
    assert device_now(row(1, "/m/a", 5, ctime=None), 2, 5, 1, 10) is None  # (schema 2)


def test_without_a_birth_time_the_same_inode_needs_the_same_content():
    assert same_file(arrival("/m/b", 5, ctime=30), row(1, "/m/a", 5)) == 2
    assert same_file(arrival("/m/b", 5, hash="new", ctime=30), row(1, "/m/a", 5)) is None


def test_a_row_whose_place_is_not_vacated_is_never_taken():
    still_there = row(1, "/m/a", 5, vacated=False)
    assert match([arrival("/m/b", 5), arrival("/m/c", 6)], [still_there]).rows == {}


def test_the_inode_wins_over_the_content_whatever_the_order():
    moved, copy = arrival("/m/z/moved", 5), arrival("/m/a/copy", 9)
    verdict = match([copy, moved], [row(1, "/m/old", 5)])
    assert verdict.rows == {1: 1}


def test_a_file_at_its_rows_path_is_that_row_unless_the_row_went_elsewhere():
    replaced = arrival("/m/a", 9, hash="new", path_row=1)  # an atomic replace
    assert match([replaced], [row(1, "/m/a", 5)]).rows == {0: 1}
    moved_away = arrival("/m/b", 5)                          # ... and the old file moved on
    assert match([replaced, moved_away], [row(1, "/m/a", 5)]).rows == {1: 1}


def test_a_file_renamed_onto_a_rows_path_keeps_its_id_and_displaces_that_row():
    renamed = arrival("/m/b", 5, path_row=2)
    verdict = match([renamed], [row(1, "/m/a", 5), row(2, "/m/b", 7, hash="old")])
    assert verdict.rows == {0: 1} and verdict.displaced == [2]


def test_identical_copies_moved_together_keep_their_names_ids():
    files = [arrival(f"/new/{n:02d}.mp3", 100 + n, ctime=99) for n in range(30)]
    rows = [row(n, f"/old/{n:02d}.mp3", 200 + n) for n in range(30)]  # copied: new inodes
    assert match(files, rows).rows == {n: n for n in range(30)}


# --- properties

paths = st.sampled_from([f"/m/{d}/{n}" for d in "ab" for n in "xyz"])
arrivals = st.builds(arrival, paths, st.integers(1, 4), st.sampled_from("hk"),
                     ctime=st.integers(5, 12), btime=st.none() | st.integers(0, 12))
candidates = st.builds(row, st.integers(1, 6), paths, st.integers(1, 4), st.sampled_from("hk"),
                       ctime=st.none() | st.integers(5, 12), vacated=st.booleans())


def _unique(items, key):
    return list({key(item): item for item in items}.values())


def _scene(files, rows):
    """As a scan makes them: a path seen once, a row per path, an arrival's `path_row` the row
    at its path (vacated: another file stands there now)."""
    rows = _unique(_unique(rows, lambda c: c.id), lambda c: c.path)
    at = {c.path: c for c in rows}
    files = [a._replace(path_row=at[a.path].id) if a.path in at else a
             for a in _unique(files, lambda a: a.path)]
    files = [a for a in files if a.path not in at or at[a.path].inode != a.inode]
    held = {a.path for a in files}
    return files, [c._replace(vacated=True) if c.path in held else c for c in rows]


@settings(max_examples=400)
@given(st.lists(arrivals, max_size=6), st.lists(candidates, max_size=6), st.randoms())
def test_match_gives_each_row_once_and_never_depends_on_the_order(files, rows, rng):
    files, rows = _scene(files, rows)
    verdict = match(files, rows)

    assert len(set(verdict.rows.values())) == len(verdict.rows)
    assert all(r in {c.id for c in rows if c.vacated} for r in verdict.rows.values())
    taken = set(verdict.rows.values())
    assert verdict.displaced == sorted({a.path_row for a in files
                                        if a.path_row is not None and a.path_row not in taken})
    shuffled = list(enumerate(files))
    rng.shuffle(shuffled)
    again = match([a for _, a in shuffled], rng.sample(rows, len(rows)))
    assert {shuffled[i][0]: r for i, r in again.rows.items()} == verdict.rows


@settings(max_examples=300)
@given(st.lists(arrivals, max_size=6), st.lists(candidates, max_size=6))
def test_a_file_provably_a_rows_own_is_never_given_another_row(files, rows):
    files, rows = _scene(files, rows)
    verdict = match(files, rows)
    for index, a in enumerate(files):
        sure = [c.id for c in rows if c.vacated and (c.device, c.inode) == (a.device, a.inode)
                and c.ctime_ns == a.ctime_ns]
        if len(sure) == 1 and sum(1 for b in files if (b.device, b.inode, b.ctime_ns)
                                  == (a.device, a.inode, a.ctime_ns)) == 1:
            assert verdict.rows.get(index) == sure[0]


@given(st.dictionaries(st.integers(1, 8), st.tuples(st.sampled_from("abcdefgh"),
                                                   st.sampled_from("abcdefgh")), max_size=8))
def test_move_order_never_puts_two_rows_on_one_path(raw):
    sources = _unique(raw.items(), lambda kv: kv[1][0])
    moves = dict(_unique(sources, lambda kv: kv[1][1]))  # distinct sources, distinct targets
    where = {row_id: source for row_id, (source, _) in moves.items()}

    for row_id, path in move_order(moves):
        where[row_id] = path
        assert len(set(where.values())) == len(where)

    assert where == {row_id: target for row_id, (_, target) in moves.items()}


def test_files_that_swapped_names_go_through_one_moving_path():
    steps = move_order({1: ("/m/a", "/m/b"), 2: ("/m/b", "/m/a")})
    assert steps == [(1, MOVING + "/m/a"), (2, "/m/a"), (1, "/m/b")]


def test_a_chain_of_renames_moves_the_last_first():
    steps = move_order({1: ("/m/a", "/m/b"), 2: ("/m/b", "/m/c")})
    assert steps == [(2, "/m/c"), (1, "/m/b")]


def test_shuffled_candidates_give_the_same_verdict_for_many_identical_files():
    files = [arrival(f"/new/{n}", 100 + n, ctime=99) for n in range(25)]
    rows = [row(n, f"/old/{n}", 200 + n) for n in range(25)]
    first = match(files, rows).rows
    rng = random.Random(7)
    for _ in range(5):
        assert match(files, rng.sample(rows, len(rows))).rows == first
