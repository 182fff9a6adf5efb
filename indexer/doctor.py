"""`indexer doctor`: check what a home server gets wrong, one line each, with the fix.

Checks are plain functions returning `Check`s; "fail" makes the command exit 1,
"warn" is worth reading but not broken. Nothing here writes anything.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from . import catalog, control, ownership, schema
from .config import Config
from .paths import printable
from .targets import adapter_for
from .watch import FIX_WATCH_LIMIT, folder_inodes, mount_type, needs_polling

WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")


class Check(NamedTuple):
    name: str
    status: str  # "ok", "warn", "fail"
    message: str
    fix: str = ""


def run(config: Config) -> list[Check]:
    checks = [Check("config", "ok", f"valid ({config.file or 'no file: built-in defaults'})")]
    roots = list(config.library.roots)
    if not roots:
        roots = catalogued_roots(config.database.path)
        if roots:
            checks.append(Check("roots", "warn", "none configured; the catalogue has files of "
                                + ", ".join(map(printable, roots)) + " (scanned by name)",
                                f"set [library] roots = {json_list(roots)} in the config file, "
                                "so that the service watches them"))
        else:
            checks.append(Check("roots", "fail", "no library roots configured",
                                'set [library] roots = ["/path/to/music"] in the config file'))
    folders = 0
    for root in roots:
        check, count = root_check(root, config.watch.backend)
        checks.append(check)
        folders += count
    checks.append(watch_limit_check(folders, WATCHES))
    checks += catalogue_checks(config.database.path)
    return checks + target_checks(config)


def target_checks(config: Config, only: str | None = None) -> list[Check]:
    """Each [[notify]] target asked now, as the service would ask it."""
    found = []
    for target in config.push.targets:
        if only is not None and target.name != only:
            continue
        name = f"notify {target.name}"
        try:
            adapter = adapter_for(target, config.push, config)
        except OSError as error:  # its token or password file
            found.append(Check(name, "fail", str(error), "make it readable by the user that "
                               "runs the service (or use systemd's LoadCredential=)"))
            continue
        found += [Check(name, c.status, c.message, c.fix) for c in adapter.check()]
    return found


def catalogued_roots(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        conn = catalog.connect(path, readonly=True)
        try:
            return [r[0] for r in conn.execute("SELECT DISTINCT root FROM files ORDER BY root")]
        finally:
            conn.close()
    except (catalog.CatalogError, sqlite3.Error):
        return []


def json_list(items: list[str]) -> str:
    import json
    return json.dumps(items, ensure_ascii=False)


def root_check(root: str, backend: str) -> tuple[Check, int]:
    name = f"root {printable(root)}"
    if not os.path.exists(root):
        return Check(name, "fail", "does not exist (not mounted?)",
                     "mount it, or remove it from library.roots"), 0
    if not os.path.isdir(root):
        return Check(name, "fail", "is not a folder", "give the folder that holds the media"), 0
    if not os.access(root, os.R_OK | os.X_OK):
        return Check(name, "fail", "cannot be read by this user",
                     "give this user (the service's: SupplementaryGroups=) read access"), 0
    kind = mount_type(root)
    polled = backend == "polling" or (backend == "auto" and needs_polling(root))
    how = ("polled (inotify does not see changes made on other machines)" if polled
           else "watched with inotify")
    mount = "a mount point" if os.path.ismount(root) else "not a mount point"
    folders = len(folder_inodes(root))
    return Check(name, "ok", f"readable, {kind}, {mount}, {folders:,} folders, {how}"), folders


def watch_limit_check(folders: int, limit_file: Path) -> Check:
    try:
        limit = int(limit_file.read_text())
    except (OSError, ValueError):
        return Check("inotify", "warn", f"cannot read {limit_file}", "")
    if folders > limit * 0.9:
        return Check("inotify", "fail", f"fs.inotify.max_user_watches is {limit:,} but the roots "
                     f"have {folders:,} folders: some would not be watched", FIX_WATCH_LIMIT)
    return Check("inotify", "ok", f"fs.inotify.max_user_watches {limit:,} for {folders:,} folders")


def catalogue_checks(path: Path) -> list[Check]:
    if os.path.isdir(path):
        return [Check("catalogue", "fail", f"{path} is a folder, not a catalogue",
                      f"set database.path (or --db) to a file, e.g. {path / 'library.db'}")]
    if not path.exists():
        writable = os.access(_existing_parent(path), os.W_OK)
        return [Check("catalogue", "warn" if writable else "fail",
                      f"{path} does not exist yet" + ("" if writable else ", and its folder is "
                                                      "not writable"),
                      "run `indexer scan` (or start the service)" if writable
                      else f"make {path.parent} writable for this user, or set database.path")]
    checks = [_catalogue_file(path), _ownership(path), _group_access(path)]
    try:
        conn = catalog.connect(path, readonly=True)
    except catalog.CatalogError as error:
        return checks + [Check("catalogue", "fail", str(error), "")]
    try:
        checks += list(_catalogue_contents(conn, path))
    finally:
        conn.close()
    return checks


def _catalogue_file(path: Path) -> Check:
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    if not os.access(path, os.R_OK):
        return Check("catalogue", "fail", f"{path}: not readable by this user",
                     f"run this as {ownership.owner_name(path)}, or join the group that reads it")
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        # a writer makes <db>-wal, <db>-shm and <db>.lock beside it
        return Check("catalogue", "warn", f"{path}: not writable by this user ({size:,} bytes)",
                     "run scans as the user that owns it (the service's)")
    return Check("catalogue", "ok", f"{path}: writable, {size / 1e6:,.1f} MB")


def _ownership(path: Path) -> Check:
    """Files beside the catalogue that its folder's owner (the service's user) did not
    make: it cannot write there (a cover to store in such a folder fails)."""
    try:
        found = ownership.foreign(path)
    except OSError as error:
        return Check("ownership", "warn", f"cannot look at {path.parent}: {error}", "")
    owner = ownership.owner_name(path.parent)
    if not found:
        return Check("ownership", "ok", f"the catalogue and its artwork belong to {owner}")
    first, who = found[0]
    files = f"{len(found):,} file" + ("" if len(found) == 1 else "s")
    return Check("ownership", "fail", f"{files} beside the catalogue not {owner}'s, the owner "
                 f"of its folder, who writes there, e.g. {first} ({who}'s): {owner} cannot "
                 "write them (nor store covers in such a folder)", ownership.fix_command(path))


def _group_access(path: Path) -> Check:
    """Files of the catalogue that the members of its folder's group (media servers) may
    not read, although they may enter the folder."""
    group = ownership.group_name(path.parent.stat().st_gid)
    try:
        hidden = ownership.hidden_from_group(path)
    except OSError as error:
        return Check("group", "warn", f"cannot look at {path.parent}: {error}", "")
    if not hidden:
        return Check("group", "ok", f"the members of {group} may read the catalogue and its "
                     "artwork" if path.parent.stat().st_mode & 0o050 == 0o050 else
                     f"the catalogue's folder is its owner's alone (group {group}: no access)")
    files = f"{len(hidden):,} file" + ("" if len(hidden) == 1 else "s")
    return Check("group", "warn", f"{files} beside the catalogue not readable by the group "
                 f"{group}, whose members may enter its folder, e.g. {hidden[0]}: they (media "
                 "servers) fail on them", ownership.fix_modes(path))


def _catalogue_contents(conn: sqlite3.Connection, path: Path) -> Iterator[Check]:
    verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    yield (Check("integrity", "ok", "quick_check ok") if verdict == "ok" else
           Check("integrity", "fail", f"quick_check: {verdict}",
                 "stop the service, keep a copy of the file, then `sqlite3 library.db .recover`"))
    version = schema.version(conn)
    if version < schema.VERSION:
        yield Check("schema", "warn", f"version {version}, this indexer's is {schema.VERSION}",
                    "the next scan or the service migrates it in place")
    elif version > schema.VERSION:
        yield Check("schema", "fail", f"version {version} is newer than this indexer's "
                    f"({schema.VERSION})", "upgrade indexer")
    else:
        yield Check("schema", "ok", f"version {version}")
    yield _service_check(conn, path)
    errors = conn.execute("SELECT count(*) FROM files f LEFT JOIN media m ON m.file_id = f.id "
                          "WHERE f.status = 'present' AND (f.error IS NOT NULL OR "
                          "m.error IS NOT NULL)").fetchone()[0]
    unlisted = sum(1 for _ in catalog.walk_problems(conn))
    if not errors and not unlisted:
        yield Check("files", "ok", "no file or folder with errors")
        return
    said = [f"{errors:,} file{'s' * (errors != 1)} could not be read (or their tags)"] * bool(errors)
    said += [f"{unlisted:,} folder{'s' * (unlisted != 1)} or path{'s' * (unlisted != 1)} the "
             "last scan could not list or read"] * bool(unlisted)
    yield Check("files", "warn", "; ".join(said),
                "see `indexer ls --errors`; fix permissions or replace broken files")


def _service_check(conn: sqlite3.Connection, path: Path) -> Check:
    last = conn.execute("SELECT max(finished_at) FROM scan_jobs WHERE status = 'completed' AND "
                        "kind IN ('reconcile', 'rescan', 'full', 'incremental')").fetchone()[0]
    address = control.service_socket(catalog.WriterLock(path).path)
    if address is None:
        return Check("service", "warn", f"not running; last full scan {last or 'never'}",
                     "systemctl enable --now indexer (see the README), or run `indexer scan` "
                     "now and then")
    return Check("service", "ok", f"running; last reconcile or scan {last or 'not yet'}")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
