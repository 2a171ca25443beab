"""What every benchmark shares: pinned threads, a median timer and recorded JSON runs.

A benchmark run is written, atomically (:func:`invsolve.files.save_json`), to
``benchmarks/results/<name>.json`` as ``{"metadata": …, "results": …}`` so that
every figure quoted in the README points at a recorded run: the metadata name
the date, the command line, the git commit (and whether the tree had
uncommitted changes), the host's CPU, its load average before and after, the
thread settings and the versions of torch and of the peers that were timed.

A run with options other than the defaults goes to
``benchmarks/results/<name>.<option>=<value>….json`` instead, so a partial or
smoke run never overwrites the full one (``--out`` chooses the file outright).

Imported by the scripts next to it (``python benchmarks/<name>.py`` puts this
folder on ``sys.path``); not part of the installed package.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from invsolve.files import save_json

RESULTS = Path(__file__).resolve().parent / "results"
REPOSITORY = RESULTS.parent.parent
#: environment variables that set the thread count of OpenMP, MKL, OpenBLAS and numexpr
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_environment(threads: int) -> dict[str, str]:
    """A copy of ``os.environ`` for a child process limited to ``threads`` threads.

    The thread pools of OpenMP, MKL and OpenBLAS size themselves when the
    library loads, so a child's count must be in its environment from the
    start; ``OMP_WAIT_POLICY=PASSIVE`` stops idle OpenMP threads spinning on
    cores another thread or process needs.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    environment = dict(os.environ)
    environment.update({name: str(threads) for name in THREAD_VARIABLES})
    environment.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return environment


def pin_threads(threads: int) -> None:
    """Run this process's torch on ``threads`` intra-op and ``threads`` inter-op threads.

    Call it before any torch computation (the inter-op pool can be sized only
    once).  ``torch.set_num_threads`` sizes torch's OpenMP and MKL pools too;
    the environment is left as it was, so :func:`run_metadata` records what
    the process started with (``OMP_WAIT_POLICY``, for one, is read only when
    OpenMP starts).
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)


def _thread_cpu_ticks() -> dict[str, int]:
    """CPU time (clock ticks, user + system) of each OS thread of this process; empty off Linux."""
    ticks = {}
    try:
        for thread in os.listdir("/proc/self/task"):
            fields = Path(f"/proc/self/task/{thread}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[thread] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    except OSError:  # no /proc, or a thread that ended while being read
        return {}
    return ticks


def time_call(function: Callable[[], object], min_seconds: float, min_repeats: int) -> dict[str, float | int | None]:
    """Median wall time of ``function()`` over enough calls to be stable.

    One untimed warm-up call, then calls until at least ``min_repeats`` have
    run *and* together they took at least ``min_seconds``.

    Returns
    -------
    dict
        ``median_ms``, ``min_ms``, ``max_ms`` (ms per call), ``repeats``;
        ``cpu_per_wall``: process CPU time over wall time of the timed calls,
        the cores kept busy on average (at most the threads used, less when
        other processes compete); ``threads_used``: OS threads that each ran
        at least 10 % as long as the busiest one during the timed calls —
        independent of the machine's load (``None`` off Linux or when the
        calls were too short to register a clock tick).
    """
    if min_repeats < 1:
        raise ValueError(f"min_repeats must be at least 1, got {min_repeats}")
    if min_seconds < 0:
        raise ValueError(f"min_seconds must be non-negative, got {min_seconds}")
    function()
    times: list[float] = []
    ticks_before = _thread_cpu_ticks()
    cpu_started = time.process_time()
    while len(times) < min_repeats or sum(times) < min_seconds:
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    cpu_seconds = time.process_time() - cpu_started
    ticks_after = _thread_cpu_ticks()
    busy = [ticks - ticks_before.get(thread, 0) for thread, ticks in ticks_after.items()]
    busiest = max(busy, default=0)
    return {
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "max_ms": 1000 * max(times),
        "repeats": len(times),
        "cpu_per_wall": cpu_seconds / sum(times),
        "threads_used": sum(ticks >= 0.1 * busiest for ticks in busy) if busiest > 0 else None,
    }


def spread(values: Sequence[float], tolerance: float = 0.10) -> dict[str, Any]:
    """Median, range and relative spread ``max / min − 1`` of repeated measurements.

    ``within_tolerance`` says whether every pair of repeats agrees to
    ``tolerance`` (0.10: within 10 %), the criterion for a figure to quote.
    """
    if not values:
        raise ValueError("spread needs at least one value, got none")
    low, high = min(values), max(values)
    relative = high / low - 1 if low > 0 else float("inf")
    return {
        "median": statistics.median(values),
        "min": low,
        "max": high,
        "relative_spread": relative,
        "within_tolerance": relative <= tolerance * (1 + 1e-9),  # 1.1 / 1.0 − 1 rounds to just above 0.1
        "tolerance": tolerance,
        "values": list(values),
    }


def results_path(name: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """Where a run of benchmark ``name`` with options ``args`` is recorded.

    ``args.out`` if given; else ``benchmarks/results/<name>.json`` for the
    defaults, and for other options a name that lists them, e.g.
    ``ct_projector.cases=parallel-256-60.rounds=1.json``.
    """
    if getattr(args, "out", None):
        return Path(args.out)
    changed = []
    for key, value in sorted(vars(args).items()):
        if key == "out" or value == parser.get_default(key):
            continue
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        changed.append(f"{key}={re.sub(r'[^A-Za-z0-9.,_-]', '_', text)}")
    return RESULTS / ".".join([name, *changed, "json"])


def _git(*arguments: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_metadata(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Where, when and with what a run happened; call at its start (after :func:`pin_threads`).

    ``packages``: distributions whose versions to record beside torch, numpy
    and invsolve (e.g. ``"odl"``, ``"astra-toolbox"``); ``None`` for one not
    installed.
    """
    commit = _git("rev-parse", "HEAD")
    dirty = _git("diff", "--quiet", "HEAD", "--")
    changed = _git("diff", "--name-only", "HEAD", "--")
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git": {
            "commit": commit.stdout.strip() if commit is not None and commit.returncode == 0 else None,
            "uncommitted_changes": None if dirty is None or dirty.returncode not in (0, 1) else dirty.returncode == 1,
            # which tracked files differed from the commit: a reader can tell whether they touch what was measured
            "changed_files": None if changed is None or changed.returncode != 0 else changed.stdout.split(),
        },
        "host": {
            "name": platform.node(),
            "cpu_model": _cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)),
            "load_average_before": list(os.getloadavg()),
            "platform": platform.platform(),
        },
        "threads": {
            "torch_intra_op": torch.get_num_threads(),
            "torch_inter_op": torch.get_num_interop_threads(),
            **{name: os.environ.get(name) for name in (*THREAD_VARIABLES, "OMP_WAIT_POLICY")},
        },
        "versions": {
            "python": platform.python_version(),
            **{package: _version(package) for package in ("torch", "numpy", "invsolve", *packages)},
        },
    }


def save_run(path: str | os.PathLike, metadata: dict[str, Any], results: Any, *, complete: bool = True) -> Path:
    """Write ``{"metadata", "results"}`` to ``path`` atomically and return the path.

    Adds the load average at the end and the whole seconds since
    :func:`run_metadata`; ``complete=False`` marks a record saved part-way
    through a run (it is rewritten as the run goes on).
    """
    started = datetime.datetime.fromisoformat(metadata["date_utc"])
    finished = {
        **metadata,
        "complete": complete,
        "elapsed_s": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()),
        "load_average_after": list(os.getloadavg()),
    }
    return save_json(path, {"metadata": finished, "results": results})
