"""Who writes a catalogue: the owner of its folder, and only that user.

A catalogue's folder (the service's state folder, `/var/lib/indexer`) holds the
catalogue, its `-wal`, `-shm` and lock files, and the artwork cache. Whoever
writes there must be its owner: a file or folder root made there (a scan run
with sudo) cannot be written by the service afterwards, and every cover to be
stored in such a folder fails. So a command that writes, run as root, first
becomes that owner (`become_owner`); `doctor` names what belongs to someone else
(`foreign`) and what the folder's group, its readers, may not read
(`hidden_from_group`); a writer says at its start which folders it cannot write
(`unwritable_folders`).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shlex
import stat
from pathlib import Path

log = logging.getLogger(__name__)

OURS = ("", "-wal", "-shm", "-journal", ".lock")  # suffixes of the catalogue's own files


def user_name(uid: int | None = None) -> str:
    uid = os.geteuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def owner_name(path: Path) -> str:
    try:
        return user_name(path.stat().st_uid)
    except OSError:
        return "another user"


def folder_of(db_path: Path) -> Path:
    """The catalogue's folder, or its nearest parent that exists (a new catalogue's)."""
    folder = db_path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def become_owner(db_path: Path) -> str | None:
    """As root, become the owner of the catalogue's folder (with that user's groups, and
    a umask as strict as the unit's), so that nothing written is root's; the name of
    that user, or None when there is nobody to become (not root, or the folder is
    root's). Irreversible: call it before anything is opened for writing."""
    if os.geteuid() != 0:
        return None
    folder = folder_of(db_path)
    info = folder.stat()
    if info.st_uid == 0:
        return None
    try:
        entry = pwd.getpwuid(info.st_uid)
        name, gid = entry.pw_name, entry.pw_gid
        groups = os.getgrouplist(name, gid)
    except KeyError:  # a user with no name (a DynamicUser= leftover): its ids alone
        name, gid, groups = f"uid {info.st_uid}", info.st_gid, [info.st_gid]
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(info.st_uid)
    os.umask(os.umask(0) | 0o027)
    log.info("running as %s, the owner of %s", name, folder)
    return name


def _entries(db_path: Path):
    """(path, lstat) of the catalogue's own files, then of everything in its artwork cache."""
    paths = [db_path.with_name(db_path.name + suffix) for suffix in OURS]
    cache = db_path.parent / "artwork"
    if cache.is_dir() and not cache.is_symlink():
        paths.append(cache)
        paths += (Path(folder, name) for folder, dirs, names in os.walk(cache)
                  for name in dirs + names)
    for path in paths:
        try:
            yield path, path.lstat()
        except FileNotFoundError:  # not there, or gone meanwhile
            continue


def foreign(db_path: Path) -> list[tuple[Path, str]]:
    """The catalogue's files and cache entries not owned by its folder's owner, with
    their owners: the writer cannot replace them (nor write in such a folder)."""
    owner = db_path.parent.stat().st_uid
    return [(path, user_name(info.st_uid)) for path, info in _entries(db_path)
            if info.st_uid != owner]


def unwritable_folders(db_path: Path) -> list[Path]:
    """Folders of the artwork cache that this process may not write in.

    Every writer asks at its start, so only the folders it writes in are looked at,
    by the cache's layout (artwork.py): the cache, the folders in it, and those of
    `thumbnails`; the files of a cache folder are never listed (a walk of them took
    38 ms of every scan's start with 83,309 cached images, 3.7 ms with 4,165)."""
    cache = db_path.parent / "artwork"
    if not cache.is_dir():
        return []
    folders = [str(cache)]
    for inner in _subfolders(str(cache)):
        folders.append(inner)
        if os.path.basename(inner) == "thumbnails":
            for size in _subfolders(inner):
                folders += [size, *_subfolders(size)]
    return [Path(folder) for folder in sorted(folders) if not os.access(folder, os.W_OK | os.X_OK)]


def _subfolders(folder: str) -> list[str]:
    """The folders in `folder`, links to folders included (a shard or `thumbnails` moved
    to another disk is written through its link: the layout bounds the depth)."""
    try:
        with os.scandir(folder) as entries:
            return [entry.path for entry in entries if entry.is_dir()]
    except OSError:  # unreadable: then not writable either, which `os.access` says
        return []


def hidden_from_group(db_path: Path) -> list[Path]:
    """The catalogue's files and cache entries that its folder's group may not read (or a
    folder it may not enter) although the folder lets the group in: its members (media
    servers) fail on them. Made with a stricter umask (an earlier unit's, 0077)."""
    if db_path.parent.stat().st_mode & 0o050 != 0o050:
        return []
    return [path for path, info in _entries(db_path) if not _group_may_read(info.st_mode)]


def _group_may_read(mode: int) -> bool:
    needed = 0o050 if stat.S_ISDIR(mode) else 0o040  # a folder: read and enter
    return stat.S_ISLNK(mode) or mode & needed == needed


def fix_command(db_path: Path) -> str:
    """The command that gives the catalogue's files back to its folder's owner."""
    info = db_path.parent.stat()
    return f"chown -R {user_name(info.st_uid)}:{group_name(info.st_gid)} {_targets(db_path)}"


def fix_modes(db_path: Path) -> str:
    """The command that lets the folder's group read all of the catalogue's files."""
    return f"chmod -R g+rX {_targets(db_path)}"


def _targets(db_path: Path) -> str:
    """The catalogue's folder when it holds nothing else, else its files and its cache."""
    folder = db_path.parent
    ours = {db_path.name + suffix for suffix in OURS} | {"artwork"}
    if all(n in ours or n.startswith(f"{db_path.name}.new-") for n in os.listdir(folder)):
        return shlex.quote(str(folder))
    return f"{shlex.quote(str(db_path))}* {shlex.quote(str(folder / 'artwork'))}"
