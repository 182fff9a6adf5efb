"""Docs kept true by tests: every command in the README, every column in the schema docs,
the README's two quick-start commands the same as what CI runs."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from indexer import schema
from indexer.cli import app

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_every_cli_command_is_in_the_readme():
    import typer.main
    commands = typer.main.get_command(app).commands
    assert commands
    for name in commands:
        assert f"`indexer {name}" in README, name


def test_every_column_of_every_table_is_in_the_schema_docs(tmp_path):
    docs = (ROOT / "docs" / "schema.md").read_text()
    conn = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    schema.migrate(conn)
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'media_fts%'")]  # the FTS index and its shadow tables
    views = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")]
    assert set(tables) >= {"files", "changes", "scan_jobs", "scan_errors", "media", "artwork"}
    assert set(views) >= {"tracks"}
    for table in tables:
        section = docs.split(f"## `{table}`")[1].split("\n## ")[0]
        for column in (r[1] for r in conn.execute(f"PRAGMA table_info({table})")):
            assert f"| `{column}` |" in section, f"{table}.{column}"
    for view in views:
        section = docs.split(f"\n`{view}`: ")[1].split("\n\n`")[0]
        for column in (r[1] for r in conn.execute(f"PRAGMA table_info({view})")):
            assert f"| `{column}` |" in section, f"{view}.{column}"
    assert f"currently **{schema.VERSION}**" in docs


def _documented_types(docs: str, name: str, kind: str) -> dict[str, str]:
    """{column: type} of the docs' table for a table or view."""
    if kind == "table":
        section = docs.split(f"## `{name}`")[1].split("\n## ")[0]
    else:
        section = docs.split(f"\n`{name}`: ")[1].split("\n\n`")[0]
    return dict(re.findall(r"^\| `(\w+)` \| (\w+) \|", section, re.MULTILINE))


# A count is no table's column: SQLite 3.41 and later declare its CAST by the affinity's
# name, 3.40 declares nothing (indexer/views.py). docs/schema.md says so.
COUNTS = {("album_artwork", "tracks"): "INT" if sqlite3.sqlite_version_info >= (3, 41) else ""}


def test_every_column_of_every_table_and_view_has_the_type_the_schema_docs_give(tmp_path):
    docs = (ROOT / "docs" / "schema.md").read_text()
    conn = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    schema.migrate(conn)
    objects = conn.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'media_fts%'").fetchall()
    assert {"file_cover", "tracks", "album_artwork"} <= {name for name, _ in objects}
    for name, kind in objects:
        documented = _documented_types(docs, name, kind)
        declared = {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({name})")}
        expected = {column: COUNTS.get((name, column), documented.get(column))
                    for column in declared}
        assert declared == expected, name
    assert "`album_artwork.tracks`: a count is no table's column" in docs


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    commands = re.findall(r"```sh\n(.*?)\n```", README)
    assert ci in commands
    assert any(c.endswith("indexer scan ~/Music") for c in commands)


def test_every_test_the_reliability_page_cites_exists():
    import ast
    page = (ROOT / "docs" / "reliability.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)(?:::(test_\w+))?", page)
    assert len(cited) > 20
    for module, name in cited:
        source = (ROOT / "tests" / module).read_text()
        defined = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
        assert not name or name in defined, f"{module}::{name}"
    for name in re.findall(r"`::(test_\w+)`", page):  # "::name" after a module
        assert any(name in (ROOT / "tests" / f).read_text()
                   for f in os.listdir(ROOT / "tests") if f.endswith(".py")), name
