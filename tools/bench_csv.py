"""How fast a big CSV file loads, and how much memory it takes: Kaggle's digit-recognizer layout.

Writes a CSV file of about ``--megabytes`` MB (default 100; Kaggle's train.csv is 73 MB) in a
temporary folder: the header ``label,pixel0,...,pixel783``, then one row per MNIST training image
(from the IDX files in ``--data-dir``), repeated until the file is big enough. Then, in a fresh
process (so that writing the file does not count), it loads the file twice over:

* ``read_csv``: the parse alone (scratchnet.data.tables), and
* ``load_data``: the whole of ``scratchnet train --data FILE``'s loading: the parse, the class names,
  the stratified test split and the training order;

and prints for each the seconds, the rows, the resident memory of the process before and at its peak
(``VmRSS`` and ``VmHWM`` of /proc/self/status, the peak reset just before the load), and the bytes
of the arrays it returns.

    python tools/bench_csv.py --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PIXELS = 28 * 28


def kaggle_lines(
    images: npt.NDArray[np.uint8], labels: npt.NDArray[Any] | None, rows: int | None = None
) -> Iterator[str]:
    """The lines of a CSV file in Kaggle's digit-recognizer layout: ``label,pixel0,...,pixel783``
    (without ``labels``: ``pixel0,...``, as its test.csv), then one line per image, the images
    repeated when ``rows`` is more than there are."""
    names = [f"pixel{k}" for k in range(PIXELS)]
    yield ",".join(names if labels is None else ["label", *names]) + "\n"
    text = [str(v) for v in range(256)]
    count = len(images) if rows is None else rows
    for row in range(count):
        k = row % len(images)
        cells = [text[v] for v in images[k].reshape(-1).tolist()]
        yield ",".join(cells if labels is None else [str(int(labels[k])), *cells]) + "\n"


def write_kaggle_csv(
    path: Path, images: npt.NDArray[np.uint8], labels: npt.NDArray[Any] | None, rows: int | None = None
) -> Path:
    """Write :func:`kaggle_lines` to ``path``; return it."""
    with open(path, "w", encoding="ascii", newline="") as handle:
        handle.writelines(kaggle_lines(images, labels, rows))
    return path


def rows_for(megabytes: float, images: npt.NDArray[np.uint8], labels: npt.NDArray[Any]) -> int:
    """How many rows make a file of about ``megabytes`` MB, from the mean length of the first lines."""
    sample = list(kaggle_lines(images[:500], labels[:500]))
    per_row = sum(len(line) for line in sample[1:]) / (len(sample) - 1)
    return max(1, round(megabytes * 1e6 / per_row))


def resident(key: str = "VmRSS") -> int:
    """The process's resident memory in bytes: now (``VmRSS``) or at its peak (``VmHWM``), from
    /proc/self/status; else the peak of ``resource.getrusage`` (which, unlike VmHWM, a process
    inherits from the one that started it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def reset_peak() -> None:
    """Start VmHWM again from the present resident memory (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass


def measure(path: str, what: str) -> dict[str, Any]:
    """Load ``path`` with ``what`` (read_csv or load_data) in this process; the figures as a dict."""
    from scratchnet.data.own_sets import load_data
    from scratchnet.data.tables import read_csv

    reset_peak()
    before = resident()
    started = time.perf_counter()
    if what == "read_csv":
        table = read_csv(path)
        rows, arrays = table.rows, table.values.nbytes
    else:
        data = load_data(path)
        rows = len(data.train_labels) + len(data.test_labels)
        arrays = sum(a.nbytes for a in (data.train_images, data.train_labels, data.test_images, data.test_labels))
    seconds = time.perf_counter() - started
    peak = resident("VmHWM")
    return {"what": what, "seconds": seconds, "rows": rows, "rss_before": before, "rss_peak": peak, "arrays": arrays}


def in_fresh_process(path: Path, what: str) -> dict[str, Any]:
    """:func:`measure` in a new Python process, whose peak memory is the load's alone."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_csv; "
        "print(json.dumps(bench_csv.measure(sys.argv[2], sys.argv[3])))"
    )
    tools = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", code, tools, str(path), what], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: $SCRATCHNET_DATA_DIR, else the cache)")
    parser.add_argument("--megabytes", type=float, default=100.0, help="the size of the CSV file (default 100)")
    parser.add_argument("--keep", metavar="PATH", help="write the file here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)

    from scratchnet.data import load_dataset

    data = load_dataset("mnist", args.data_dir, splits=("train",))
    rows = rows_for(args.megabytes, data.train_images, data.train_labels)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(args.keep) if args.keep else Path(folder) / "train.csv"
        started = time.perf_counter()
        write_kaggle_csv(path, data.train_images, data.train_labels, rows)
        size = os.path.getsize(path)
        print(
            f"wrote {path}: {size / 1e6:.1f} MB, {rows} rows of 785 columns "
            f"(Kaggle's digit-recognizer layout), in {time.perf_counter() - started:.1f} s"
        )
        for what in ("read_csv", "load_data"):
            r = in_fresh_process(path, what)
            print(
                f"{what:>9}: {r['seconds']:.2f} s, {r['rows']} rows ({size / 1e6 / r['seconds']:.0f} MB/s); "
                f"resident memory {r['rss_before'] / 2**20:.0f} MiB before, {r['rss_peak'] / 2**20:.0f} MiB at "
                f"the peak (+{(r['rss_peak'] - r['rss_before']) / 2**20:.0f} MiB); "
                f"arrays returned {r['arrays'] / 2**20:.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
