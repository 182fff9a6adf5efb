"""The Python API: a catalogue, a configuration, and the scans run over them.

A media server written in Python embeds the scanner with it instead of
shelling out; the CLI uses it too.

    from indexer import Manager

    manager = Manager(db_path="library.db", roots=["/srv/music"], profile="conservative")
    result = manager.scan(on_progress=lambda p: print(f"{p.percent:.0f}%"))
    manager.tune(parallel=False)          # the next scan runs sequentially
    print(result.summary())
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import catalog, config as config_module
from .config import Config, ConfigError
from .paths import absolute
from .records import Progress
from .scan import Scan, ScanResult


class Manager:
    """Runs scans of a library into its catalogue; one scan at a time per catalogue."""

    def __init__(self, db_path: str | Path | None = None, *, roots: Iterable[str] | None = None,
                 profile: str | None = None, parallel: bool | None = None,
                 workers: int | None = None, batch_size: int | None = None,
                 config_file: str | None = None, config: Config | None = None,
                 env: dict[str, str] | None = None, settings: dict[str, Any] | None = None):
        """Resolve the configuration once, from `config` or from a file, the environment
        (pass `env={}` to ignore it) and these arguments; `settings` sets any other key
        by its dotted name, e.g. `{"scan.survey_workers_from": 1000}`."""
        if config is None:
            overrides = {
                **(settings or {}),
                "database.path": None if db_path is None else str(db_path),
                "library.roots": None if roots is None else list(roots),
                "scan.profile": profile, "scan.parallel": parallel,
                "scan.workers": workers, "scan.batch_size": batch_size,
            }
            config = config_module.load(config_file, overrides, env)
        self.config = config
        self._stop = threading.Event()

    @property
    def db_path(self) -> Path:
        return self.config.database.path

    def tune(self, *, parallel: bool | None = None, workers: int | None = None,
             batch_size: int | None = None) -> None:
        """Change how the next scan runs: sequential or parallel, pool and batch sizes."""
        changes: dict[str, Any] = {}
        for name, value in (("parallel", parallel), ("workers", workers), ("batch_size", batch_size)):
            if value is not None:
                changes[name] = config_module.KEY_BY_NAME[f"scan.{name}"].check(value)
        if changes:
            self.config = dataclasses.replace(
                self.config, scan=dataclasses.replace(self.config.scan, **changes))

    def scan(self, roots: Iterable[str] | None = None, *, rehash: bool = False,
             on_progress: Callable[[Progress], None] | None = None) -> ScanResult:
        """Scan the given roots (default: the configured ones) and return the job's result.

        Raises `catalog.CatalogBusy` if another process is writing the catalogue,
        `ConfigError` if there is no root to scan.
        """
        chosen = [absolute(str(r)) for r in roots] if roots else list(
            self.config.library.roots)
        if not chosen:
            raise ConfigError("library.roots: no folder to scan; give one or set it in the config")
        self._stop.clear()
        db = self.config.database
        with catalog.open_for_writing(db.path, db.synchronous,
                                     busy_timeout_s=db.busy_timeout_s) as write_conn:
            read_conn = catalog.connect(db.path, synchronous=db.synchronous)
            try:
                job = Scan(write_conn, read_conn, self.config.library, self.config.scan,
                           roots=chosen, metadata=self.config.metadata, db_path=db.path,
                           rehash=rehash, stop=self._stop, on_progress=on_progress)
                return job.run()
            finally:
                read_conn.close()

    def cancel(self) -> None:
        """Stop the running scan soon: done work is committed, the job ends cancelled."""
        self._stop.set()

    def status(self) -> dict:
        """Running and recent jobs and catalogue totals (what `indexer status --json` prints)."""
        conn = catalog.connect(self.db_path, readonly=True)
        try:
            return catalog.status_report(conn)
        finally:
            conn.close()
