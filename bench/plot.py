"""Draw a sizes sweep: time per file and peak memory against the library's size.

    python bench/plot.py WORKDIR/results-sizes-*.json [-o docs/bench-sizes.png]

Reads the results file that `bench/run.py --sizes ...` writes (its "sizes" rows)
and writes a PNG of two panels, both against the library's size in tracks on a
log scale: time per file in µs (first full scan, no-change rescan, find) on a log
scale, where a flat line means the cost per file does not grow with the library;
and peak RSS in MiB of the full scan and the rescan, with the 400 MB target.

matplotlib is not a dependency of the indexer: `pip install -e '.[bench]'` (or
`pip install matplotlib`) in the venv that runs this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import matplotlib
except ImportError:
    sys.exit("plot.py needs matplotlib: pip install -e '.[bench]' (or pip install matplotlib)")
matplotlib.use("Agg")  # a file, never a window
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

MIB = 1024 * 1024
RSS_TARGET_MIB = 400e6 / MIB  # the 1,000,000-track full scan: under 400 MB

# (key in a "sizes" row, label, style, where its values are written: points above or below).
TIME_LINES = (("full_us_per_file", "first full scan (parallel)", "o-", 6),
              ("rescan_us_per_file", "no-change rescan", "s-", 6),
              ("find_us_per_file", "find -printf (the floor)", "^--", -12))
RSS_LINES = (("full_peak_rss_mib", "first full scan", "o-", 6),
             ("rescan_peak_rss_mib", "no-change rescan", "s-", -12))


def load(path: Path) -> dict:
    results = json.loads(path.read_text())
    if results.get("kind") != "sizes" or not results.get("sizes"):
        sys.exit(f"plot.py: {path} is not the results of a sizes sweep (bench/run.py --sizes)")
    return results


def draw(results: dict, out: Path) -> None:
    rows = sorted(results["sizes"], key=lambda row: row["tracks"])
    tracks = [row["tracks"] for row in rows]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    _panel(times, tracks, rows, TIME_LINES, "time per file, µs (log)", "{:,.0f}")
    times.set_yscale("log")
    times.set_title("Time per file: flat means it does not grow with the library")
    times.legend(loc="best")
    _panel(memory, tracks, rows, RSS_LINES, "peak RSS, MiB (largest process)", "{:.0f}")
    memory.axhline(RSS_TARGET_MIB, color="grey", linestyle=":",
                   label="target at 1,000,000 tracks: 400 MB")
    memory.set_ylim(0, max(RSS_TARGET_MIB, *(row["full_peak_rss_mib"] for row in rows)) * 1.1)
    memory.set_title("Peak memory")
    memory.legend(loc="center left")  # the target line runs along the top
    figure.suptitle(_title(results))
    figure.savefig(out, dpi=120)


def _panel(axes, tracks: list[int], rows: list[dict], lines: tuple, ylabel: str, fmt: str) -> None:
    """One line per key, each point labelled with its value; sizes on a log x axis."""
    for key, label, style, offset in lines:
        values = [row[key] for row in rows]
        axes.plot(tracks, values, style, label=label)
        for x, y in zip(tracks, values, strict=True):
            axes.annotate(fmt.format(y), (x, y), textcoords="offset points", xytext=(0, offset),
                          ha="center", fontsize=8)
    axes.set_xscale("log")
    axes.set_xticks(tracks, [f"{n:,}" for n in tracks])
    axes.minorticks_off()
    axes.set_xlabel("library size, tracks (log)")
    axes.set_ylabel(ylabel)
    axes.grid(True, which="major", alpha=0.3)
    axes.margins(x=0.08, y=0.1)  # room for the values' labels at the ends


def _title(results: dict) -> str:
    first_line = results["table"].splitlines()[0]  # "indexer bench, DATE; machine, revision; load"
    return f"{first_line.split(';')[0]}: {results.get('cache', 'warm cache')}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a results-sizes-*.json from bench/run.py --sizes")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/bench-sizes.png"),
                        help="the PNG to write (default %(default)s)")
    args = parser.parse_args(argv)
    draw(load(args.results), args.output)
    print(f"plot.py: wrote {args.output}")


if __name__ == "__main__":
    main()
