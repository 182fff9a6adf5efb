"""What the CLI shows while a scan runs and when it ends. Only the CLI imports this.

On a terminal: a live progress bar (rich, imported only then). Otherwise:
a plain log line every few seconds, which journald and log files take well.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from .paths import printable
from .records import Progress

log = logging.getLogger("indexer")

PLAIN_EVERY_S = 5.0


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def progress_line(p: Progress) -> str:
    c = p.counters
    total = f"{c.files_found:,}" + ("" if p.walk_done else "+")
    eta = f", about {p.eta:,.0f} s left" if p.eta is not None else ""
    return (f"scan: {c.files_processed:,} of {total} files ({p.percent:.1f}%), "
            f"{human_bytes(c.bytes_processed)} read, {p.rate:,.0f} files/s{eta}{tags_part(p)}")


def tags_part(p: Progress) -> str:
    """Tag reading runs beside hashing: its own count, once there is any."""
    c = p.counters
    if not (c.metadata_queued or c.metadata_copied):
        return ""
    done = c.metadata_extracted + c.metadata_failed
    failed = f", {c.metadata_failed:,} failed" if c.metadata_failed else ""
    return f"; tags {done:,} of {c.metadata_queued:,} read{failed}"


class PlainProgress:
    """A log line every few seconds: for pipes, files and the journal."""

    def __init__(self, every: float = PLAIN_EVERY_S):
        self.every = every
        self._last = time.monotonic()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self, p: Progress) -> None:
        if p.now - self._last >= self.every:
            self._last = p.now
            log.info("%s", progress_line(p))


class BarProgress:
    """A live bar on the terminal: found, processed, bytes, rate, and the ETA once known."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, TextColumn

        self._bar = RichProgress(
            TextColumn("[bold]scan"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[detail]}"),
            console=Console(file=stream), transient=True, refresh_per_second=8)
        self._task = self._bar.add_task("scan", total=None, detail="walking...")

    def __enter__(self) -> "BarProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def __call__(self, p: Progress) -> None:
        c = p.counters
        found = f"{c.files_found:,}" + ("" if p.walk_done else "+")
        eta = f" · ETA {p.eta:,.0f} s" if p.eta is not None else ""
        detail = (f"{c.files_processed:,}/{found} files · {human_bytes(c.bytes_processed)} · "
                  f"{p.rate:,.0f} files/s{eta}{tags_part(p)}")
        self._bar.update(self._task, total=max(c.files_found, 1), completed=c.files_processed,
                         detail=detail)


class ServiceProgress:
    """Progress lines of a scan that the service runs, as `indexer rescan` receives them."""

    def __init__(self, stream: TextIO):
        self.stream, self.tty = stream, stream.isatty()
        self._last = 0.0

    def __enter__(self) -> "ServiceProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tty:
            self.stream.write("\n")

    def __call__(self, p: dict) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < PLAIN_EVERY_S:
            return
        self._last = now
        total = f"{p['files_found']:,}" + ("" if p["walk_done"] else "+")
        line = f"job #{p['job_id']}: {p['files_processed']:,} of {total} files ({p['percent']:.1f}%)"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
        else:
            log.info("%s", line)


def service_progress(stream: TextIO = sys.stderr) -> ServiceProgress:
    return ServiceProgress(stream)


def scan_progress(stream: TextIO = sys.stderr, quiet: bool = False):
    return BarProgress(stream) if stream.isatty() and not quiet else PlainProgress()


def print_summary(summary: dict[str, Any], as_json: bool, out: TextIO = sys.stdout,
                  warnings: bool = True) -> None:
    """A scan's result; its warnings too unless they were logged here as they came."""
    if as_json:
        out.write(json.dumps(summary, ensure_ascii=False) + "\n")
        return
    s = summary
    out.write(f"scan {s['status']} in {s['duration_s']:.2f} s: {s['files_processed']:,} files, "
              f"{human_bytes(s['bytes_processed'])} read ({s['files_per_s']:,.0f} files/s)\n")
    out.write("  " + ", ".join(f"{name} {s[name]:,}" for name in (
        "added", "modified", "moved", "missing", "restored", "unchanged", "skipped", "errors"))
        + "\n")
    if s["metadata_queued"] or s["metadata_copied"]:
        out.write(f"  tags: {s['metadata_extracted']:,} read, {s['metadata_copied']:,} copied "
                  f"from identical files, {s['metadata_failed']:,} failed\n")
    for texts in s["warnings"].values() if warnings else ():
        for warning in texts:
            out.write(f"  warning: {printable(warning)}\n")
    if s["errors"]:
        out.write("  files with errors: indexer ls --errors\n")


def print_offline(roots: list[str], as_json: bool, out: TextIO = sys.stdout) -> None:
    """Roots a rescan could not reconcile: offline (missing, unreadable or unmounted)."""
    if as_json:
        out.write(json.dumps({"offline": roots}, ensure_ascii=False) + "\n")
        return
    for root in roots:
        out.write(f"root {printable(root)} is offline (missing, unreadable or unmounted): not "
                  "reconciled; mount it, and the service reconciles it when it is back\n")


def print_rows(rows, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Stream catalogue rows as JSON lines or as `status kind size path [error]` lines."""
    count = 0
    for row in rows:
        count += 1
        if as_json:
            row = dict(row, path_raw=row["path_raw"].hex() if row["path_raw"] is not None else None)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            continue
        error = f"  [{printable(row['error'])}]" if row["error"] else ""
        size = "-" if row["size"] is None else f"{row['size']:,}"
        out.write(f"{row['status']:<8} {row['kind']:<6} {size:>12} "
                  f"{printable(row['path'])}{error}\n")
    return count


def print_record(record: dict[str, Any], as_json: bool, out: TextIO = sys.stdout) -> None:
    """A file's row, then its tags and pictures, as `name  value` lines (or one JSON object;
    `path_raw` as hex)."""
    file = dict(record["file"])
    file["path_raw"] = file["path_raw"].hex() if file.get("path_raw") is not None else None
    if as_json:
        out.write(json.dumps({**record, "file": file}, ensure_ascii=False) + "\n")
        return
    _pairs(file, out)
    media = record["media"]
    if media is not None:
        out.write("\ntags:\n")
        _pairs({k: v for k, v in media.items() if k not in ("file_id", "tags")}, out, "  ")
        out.write("\nevery tag:\n" if media["tags"] else "")
        for key, values in (media["tags"] or {}).items():
            out.write(f"  {printable(key)}: {printable('; '.join(values))}\n")
    if record.get("streams"):
        out.write("\nstreams:\n")
    for stream in record.get("streams", ()):
        out.write(f"  {stream_line(stream)}\n")
    for art in record["artwork"]:
        out.write(f"\nartwork ({art['source']}): {art['mime']} {art['width']}x{art['height']} "
                  f"{art['size']:,} bytes {printable(art['path'])}\n")


def stream_line(s: dict[str, Any]) -> str:
    """`#1 audio aac (LC) 6 ch 5.1 48000 Hz [eng] "Surround" default`"""
    facts = [f"#{s['idx']}", s["type"], s["codec"] or "?"]
    facts += [f"({s['profile']})"] if s["profile"] else []
    if s["type"] == "video":
        facts += [f"{s['width']}x{s['height']}", f"{s['frame_rate']:g} fps" if s["frame_rate"]
                  else "", f"{s['bit_depth']}-bit" if s["bit_depth"] else "", s["pix_fmt"] or "",
                  s["color_transfer"] or ""]
    elif s["type"] == "audio":
        facts += [f"{s['channels']} ch" if s["channels"] else "", s["channel_layout"] or "",
                  f"{s['sample_rate']} Hz" if s["sample_rate"] else ""]
    facts += [f"[{s['language']}]" if s["language"] else "",
              f'"{s["title"]}"' if s["title"] else "",
              "default" if s["is_default"] else "", "forced" if s["is_forced"] else ""]
    return printable(" ".join(fact for fact in facts if fact))


def _pairs(row: dict[str, Any], out: TextIO, indent: str = "") -> None:
    width = max(map(len, row))
    for name, value in row.items():
        shown = ("" if value is None else printable("; ".join(value)) if isinstance(value, list)
                 else printable(str(value)))
        out.write(f"{indent}{name:<{width}}  {shown}\n")


def print_tracks(rows, as_json: bool, out: TextIO = sys.stdout) -> None:
    """Search results: JSON lines, or `artist - album - NN title  path` lines (a video:
    `show S02E05 title (year)  1920x1080 HDR10  path`; a photo: `taken at  WxH  path`)."""
    for row in rows:
        if as_json:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif row["kind"] == "video" and "show" in row:
            out.write(f"{video_line(row)}  {printable(row['path'])}\n")
        elif row["kind"] == "image":
            out.write(f"photo {row['taken_at'] or '?'}  {row['width']}x{row['height']}  "
                      f"{printable(row['path'])}\n")
        else:
            number = f"{row['track_no']:02d} " if row["track_no"] else ""
            out.write(f"{printable(row['artist'] or '?')} - {printable(row['album'] or '?')} - "
                      f"{number}{printable(row['title'] or '?')}  {printable(row['path'])}\n")


def video_line(row: dict) -> str:
    """`Show S02E05 Title (2011)  1920x1080 HDR10`: what a video is, in one line."""
    episode = ""
    if row["season"] is not None or row["episode"] is not None:
        episode = f"S{row['season'] or 0:02d}E{row['episode'] or 0:02d}"
    name = " ".join(printable(str(part)) for part in (row["show"], episode, row["title"]) if part)
    year = f" ({row['year']})" if row["year"] else ""
    size = f"{row['width']}x{row['height']}" if row["width"] else "?"
    return f"{name or '?'}{year}  {size}{' ' + row['hdr'] if row['hdr'] else ''}"


def print_status(report: dict[str, Any], out: TextIO = sys.stdout) -> None:
    out.write(f"catalogue {printable(report['catalogue'])} (schema {report['schema_version']})\n")
    service = report.get("service")
    if service is None:
        out.write("service: not running\n")
    elif "error" in service:
        out.write(f"service: not answering ({printable(service['error'])})\n")
    else:
        out.write(f"service: running, pid {service['pid']}; {service['queued']} requests queued, "
                  f"{service['pending_places']} places waiting; last reconcile "
                  f"{service['last_reconcile'] or 'not yet'}\n")
        if service.get("waiting_for_room"):
            out.write(f"  waiting for room on {printable(service['waiting_for_room'])}: the "
                      "catalogue's disk is full; free some space, and it goes on by itself\n")
        unsure = set(service.get("unreconciled", ()))
        for root, state in service["roots"].items():
            note = "  (not reconciled: it looked unmounted)" if root in unsure else ""
            out.write(f"  {state:<8} {printable(root)}{note}\n")
        for target in service.get("push", ()):
            out.write(f"  push {target['name']} ({target['type']}): cursor {target['cursor']}, "
                      f"{target['pending'] or 0:,} changes pending, last delivery "
                      f"{target['last_delivery'] or 'none since start'}"
                      + (f"; last error {printable(target['last_error'])}"
                         if target["last_error"] else "") + "\n")
        if service["current"]:
            c = service["current"]
            out.write(f"  now: job #{c['job_id']}, {c['files_processed']:,} of "
                      f"{c['files_found']:,} files ({c['percent']:.0f}%)\n")
    files = report["files"]
    table(["kind", "present", "missing"], [
        [kind, f"{c['present']:,}", f"{c['missing']:,}"] for kind, c in files.items()],
        out, title="files" if files else "files: none yet")
    if report["files_with_errors"]:
        out.write(f"  {report['files_with_errors']:,} with errors: indexer ls --errors\n")
    table(["job", "status", "kind", "started", "files", "added", "changed", "moved",
           "missing", "errors", "roots"], [
        [f"#{j['id']}", j["status"], j["kind"], j["started_at"],
         f"{j['files_processed']:,}/{j['files_found']:,} ({j['progress']:.0f}%)",
         f"{j['added']:,}", f"{j['modified']:,}", f"{j['moved']:,}", f"{j['missing']:,}",
         f"{j['errors']:,}", ", ".join(printable(r) for r in j["roots"])]
        for j in report["jobs"]], out, title="jobs" if report["jobs"] else "jobs: none yet")
    for job in report["jobs"]:
        for line in (job["message"] or "").splitlines():
            out.write(f"  #{job['id']}: {printable(line)}\n")


def table(headers: list[str], rows: list[list[str]], out: TextIO, title: str = "") -> None:
    """A rich table on a terminal; aligned plain text otherwise (pipes, files, journals)."""
    if not rows:
        out.write(f"{title}\n" if title else "")
        return
    if out.isatty():
        from rich.console import Console
        from rich.table import Table
        grid = Table(*headers, title=title or None, title_justify="left")
        for row in rows:
            grid.add_row(*(printable(cell) for cell in row))
        Console(file=out, highlight=False).print(grid)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out.write(f"{title}:\n" if title else "")
    for row in [headers, *rows]:
        out.write("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                  + "\n")


def print_config(cfg: Any, as_json: bool, out: TextIO = sys.stdout) -> None:
    """The effective configuration as TOML, each value with where it came from."""
    from .config import KEYS
    if as_json:
        out.write(json.dumps({
            "file": str(cfg.file) if cfg.file else None,
            "database_path": str(cfg.database.path),
            "keys": {k.dotted: {"value": cfg.values[k.dotted], "source": cfg.sources[k.dotted]}
                     for k in KEYS},
        }, ensure_ascii=False) + "\n")
        return
    out.write(f"# configuration file: {cfg.file or 'none'}\n")
    out.write(f"# catalogue: {cfg.database.path}\n")
    section = None
    for key in KEYS:
        if key.section != section:
            section = key.section
            out.write(f"\n[{section}]\n")
        value = cfg.values[key.dotted]
        value = list(value) if isinstance(value, tuple) else value
        out.write(f"{key.name} = {_toml(value)}  # {cfg.sources[key.dotted]}\n")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_checks(checks, as_json: bool, out: TextIO = sys.stdout) -> None:
    if as_json:
        out.write(json.dumps([c._asdict() for c in checks], ensure_ascii=False) + "\n")
        return
    for check in checks:
        fix = f"  -> {check.fix}" if check.fix and check.status != "ok" else ""
        out.write(f"{check.status.upper():<5} {check.name}: {check.message}{fix}\n")


def print_change(change: dict, as_json: bool, out: TextIO = sys.stdout) -> None:
    if as_json:
        out.write(json.dumps(change, ensure_ascii=False) + "\n")
    else:
        was = f" (was {printable(change['old_path'])})" if change["old_path"] else ""
        out.write(f"{change['seq']:>8} {change['at']} {change['kind']:<8} #{change['file_id']} "
                  f"{printable(change['path'])}{was}\n")
    out.flush()  # a script reading --follow gets each change as it comes


def print_dupes(groups, as_json: bool, out: TextIO = sys.stdout) -> None:
    total = 0
    for group in groups:
        total += group["wasted_bytes"]
        if as_json:
            out.write(json.dumps(group, ensure_ascii=False) + "\n")
            continue
        out.write(f"{group['copies']} copies of {human_bytes(group['size'])} "
                  f"({human_bytes(group['wasted_bytes'])} wasted), hash {group['hash']}:\n")
        for path in group["paths"]:
            out.write(f"  {printable(path)}\n")
    if not as_json:
        out.write(f"{human_bytes(total)} in duplicate copies\n")


def write_export(rows, fmt: str, out: TextIO) -> None:
    if fmt == "csv":
        import csv
        from .queries import EXPORT_COLUMNS
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        return
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def print_doomed(doomed, out: TextIO = sys.stdout) -> None:
    for row in doomed:
        out.write(f"missing since {row.missing_since}: #{row.id} {printable(row.path)}\n")
    out.write(f"{rows_count(len(doomed))} to delete\n" if doomed else "nothing to purge\n")


def rows_count(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


# `indexer verify`: one line per finding, then a summary that says what to do.

_UPDATE = "run `indexer scan` (or `indexer rescan` while the service runs) to bring the " \
          "catalogue up to date"
VERIFY_ADVICE = {
    "gone": f"files no longer on disk: {_UPDATE}",
    "excluded": "files a scan no longer indexes (library.ignore, library.kinds, symlinks): if "
                f"that is not what you meant, change the configuration; else {_UPDATE}",
    "unindexed": f"media files the catalogue does not list: {_UPDATE}",
    "changed": f"files whose size or mtime changed: {_UPDATE}",
    "content": "the file's bytes changed but its size and mtime did not: if you did not edit "
               "it, restore it from a backup; then `indexer scan --rehash`",
    "unreadable": "files that could not be read: check their permissions (the user running "
                  "indexer must read them) and the disk (`dmesg`, `smartctl -a`)",
}


def print_finding(finding, as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # now, not at import: a test may have replaced it
    if as_json:
        out.write(json.dumps({
            "kind": finding.kind, "path": finding.path,
            "path_raw": finding.raw.hex() if finding.raw is not None else None,
            "changes": [change._asdict() for change in finding.changes],
            "reason": finding.reason}, ensure_ascii=False) + "\n")
    else:
        detail = "; ".join(_change_text(change) for change in finding.changes)
        if finding.kind == "content":
            detail += ", size and mtime unchanged"
        detail = detail or finding.reason or ""
        out.write(f"{finding.kind:<10} {printable(finding.path)}"
                  f"{': ' + printable(detail) if detail else ''}\n")
    out.flush()  # each finding as it is found: a Ctrl-C keeps what was printed


def _change_text(change) -> str:
    if change.what == "size":
        return f"size {change.old:,} -> {change.new:,} bytes"
    if change.what == "mtime_ns":
        return f"mtime {_ns_time(change.old)} -> {_ns_time(change.new)}"
    return f"{change.what} {change.old} -> {change.new}"


def _ns_time(ns: int) -> str:
    """Nanoseconds since the epoch as UTC, every digit kept: a touch may move it by 1 ns."""
    from datetime import datetime, timezone
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}".rstrip("0").rstrip(".") + "Z"


def print_verify_summary(summary, as_json: bool, out: TextIO | None = None) -> None:
    s, out = summary, out or sys.stdout
    if as_json:
        out.write(json.dumps({
            "kind": "summary", "status": s.status, "counts": s.counts, "files": s.files,
            "bytes_read": s.bytes_read, "roots": list(s.roots), "warnings": s.warnings,
            "duration_s": round(s.duration_s, 3)}, ensure_ascii=False) + "\n")
        return
    found = sum(s.counts.values())
    differences = _count(found, "difference")
    read = f", {human_bytes(s.bytes_read)} read" if s.bytes_read else ""
    scope = (f"{_count(s.files, 'file')} in {_count(len(s.roots), 'root')}{read}, "
             f"{s.duration_s:.2f} s")
    out.write({
        "agree": f"verify: the catalogue and the disk agree ({scope})\n",
        "differ": f"verify: {differences} ({scope})\n",
        "cancelled": f"verify cancelled: {differences} so far, above ({scope})\n",
        "unverified": "verify: no root could be verified\n",
    }[s.status])
    for kind, count in s.counts.items():
        if count:
            out.write(f"  {kind} {count:,}: {VERIFY_ADVICE[kind]}\n")
    for warnings in s.warnings.values():
        for warning in warnings:
            out.write(f"  warning: {printable(warning)}\n")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
