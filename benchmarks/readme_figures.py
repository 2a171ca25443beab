"""Regenerate the README's tables and figures that come from the demos and the examples.

Every job runs with its defaults — the settings the README states — and fixed
seeds, copies its figures into ``docs/``, and the script prints the README's
markdown tables filled with the new numbers, says which README numbers they
no longer match, and records everything (metrics, headline numbers, tables,
wall seconds per job) in ``benchmarks/results/readme_figures.json`` (see
``benchmarks/_recording.py``; a run of some jobs only goes to
``readme_figures.only=….json``).

    python benchmarks/readme_figures.py [--only JOB ...] [--threads 2] [--docs docs]

========================  ==============================================  ===================================
job                       runs                                            writes
========================  ==============================================  ===================================
``demo-ct``               ``invsolve demo`` (seed 0: 16 views, DDS and    ``docs/demo_ct.png``; the demo table
                          DPIR with preset ``ct-sparse``), then the
                          previous demo:
                          RED-Diff with ``ct-ellipses`` on the same scan
                          (1000 steps, weight 0.01, λ 0.25, seed 0)
``demo-inpainting``       ``invsolve demo inpainting`` (seed 0)          ``docs/demo_inpainting.png`` (the
                                                                          README shows no table of it)
``ct-sparse-view``        ``examples/ct_sparse_view.py``                  ``docs/ct_sparse_view.png``; its table
``mri-cs``                ``examples/mri_cs.py``                          ``docs/mri_cs.png``,
                                                                          ``docs/mri_cs_64.png``; both tables
``ct-3d-cone``            ``examples/ct_3d_cone.py``                      ``docs/ct_3d_cone.png`` (the README
                                                                          quotes its numbers in the text)
``ultrasound-dehaze``     ``examples/ultrasound_dehaze.py``               ``docs/ultrasound_dehaze.png``,
                                                                          ``docs/ultrasound_echo_frame.png``
                                                                          (the README quotes its metrics)
``galaxy-augment``        ``examples/galaxy_augment.py``                  ``docs/galaxy_augment.png``,
                                                                          ``docs/galaxy_statistics.png`` (the
                                                                          README quotes its metrics)
========================  ==============================================  ===================================

The first four take about 5 minutes on 2 cores (317 s with the cores shared with
other work; the demo's DDS, the previous demo's RED-Diff and the MRI
example's DDS and 256² TV are nearly all of it).

The README's other figures and tables are produced elsewhere, not here:

* ``docs/samplers_ct16.png``, ``docs/samplers.png``: ``benchmarks/samplers.py
  --plot`` (the second redrawn from the runs stored in
  ``docs/benchmarks/samplers_*.jsonl`` with ``--records``); the sampler
  tables beside them from the same runs;
* ``docs/ct_ellipses_samples.png``, ``docs/mri_brain_samples.png``,
  ``docs/ct_synthetic_prior_samples.png``: the sample grids that
  ``invsolve train-prior configs/<prior>.toml`` writes at its last step
  (``samples/step_<N>.png``), copied;
* ``docs/ct_synthetic_samples.png`` (training images of
  ``synthetic_ct_slices``): no script in the repository writes it;
* the tables of ``benchmarks/gaussian_oracle.py``, ``warm_start.py``,
  ``samplers.py``, ``sweep_presets.py``, ``prior_training.py`` and
  ``ct_projector.py``: those scripts.

:data:`TABLES` describes each README table this script fills;
:func:`readme_numbers` reads the numbers back from README.md and
:func:`headline_numbers` takes them from a job's metrics, so that
``tests/test_readme_numbers.py`` and ``tests/test_examples.py`` can hold the
README to the code within :data:`TOLERANCE`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = REPOSITORY / "examples"
#: how far a README number may be from the code's: the README rounds PSNR to 0.1 dB and SSIM to
#: 0.01 (half of it is rounding), and the rest absorbs float32 differences between CPUs
TOLERANCE = {"psnr_db": 0.1, "ssim": 0.01}
JOBS = ("demo-ct", "demo-inpainting", "ct-sparse-view", "mri-cs", "ct-3d-cone", "ultrasound-dehaze", "galaxy-augment")
#: job → (file the job writes, figure in docs/)
FIGURES = {
    "demo-ct": [("ct.png", "demo_ct.png")],
    "demo-inpainting": [("inpainting.png", "demo_inpainting.png")],
    "ct-sparse-view": [("ct_sparse_view.png", "ct_sparse_view.png")],
    "mri-cs": [("mri_cs.png", "mri_cs.png"), ("mri_cs_64.png", "mri_cs_64.png")],
    "ct-3d-cone": [("orthogonal_slices.png", "ct_3d_cone.png")],
    "ultrasound-dehaze": [("ultrasound_dehaze.png", "ultrasound_dehaze.png"), ("echo_frame.png", "ultrasound_echo_frame.png")],
    "galaxy-augment": [("galaxy_augment.png", "galaxy_augment.png"), ("galaxy_statistics.png", "galaxy_statistics.png")],
}
#: the previous demo's RED-Diff (commit c4c50da), the README's last demo column
PREVIOUS_DEMO = {"steps": 1000, "obs_weight": 0.01, "regularization": 0.25}


@dataclass(frozen=True)
class Table:
    """One README table of PSNR (and SSIM) numbers, and where its numbers come from.

    Parameters
    ----------
    name : str
        The table's key in the recorded JSON and in :func:`headline_numbers`.
    job : str
        The job whose metrics fill it (one of :data:`JOBS`).
    header : str
        The table's header line in README.md, verbatim: how it is found.
    rows, columns : mapping of str to str
        Row keys and column keys of the metrics (``scores(metrics)[row][column]``)
        to the labels in README.md (a row's label is its first cell).
    scores : callable
        The job's metrics to ``{row: {column: {"psnr_db": …, "ssim": …}}}``.
    ssim : bool
        Whether a cell gives SSIM after the PSNR (``"30.4 dB / 0.95"``).
    bold : str, optional
        ``"parts"``: the best PSNR and the best SSIM of a row in bold, each on
        its own; ``"cell"``: the whole cell when one column has both.
    name_ssim : bool
        The first cell of the first row writes ``SSIM`` before its SSIM.
    """

    name: str
    job: str
    header: str
    rows: Mapping[str, str]
    columns: Mapping[str, str]
    scores: Callable[[dict], dict]
    ssim: bool = True
    bold: str | None = None
    name_ssim: bool = False

    def metrics(self) -> tuple[str, ...]:
        """The metrics a cell shows."""
        return ("psnr_db", "ssim") if self.ssim else ("psnr_db",)


TABLES = (
    Table(
        "demo-ct",
        "demo-ct",
        "| PSNR / SSIM | FBP | TV | DDS (preset `ct-sparse`; on `CT_small` from TV, `ct-sparse-from-tv`) | DPIR (preset `ct-sparse`) | RED-Diff + `ct-ellipses` (the previous demo) |",
        {"held_out_phantom": "held-out phantom (`ct-ellipses`)", "ct_small": "`CT_small.dcm` (`ct-synthetic`)"},
        {"fbp": "FBP", "tv": "TV", "dds": "DDS", "dpir": "DPIR", "previous_demo_red_diff": "RED-Diff (previous demo)"},
        lambda metrics: metrics["scores"],
        bold="cell",
    ),
    Table(
        "ct-sparse-view",
        "ct-sparse-view",
        "| views | FBP (Hann) | TV (λ = 0.02) |",
        {"8": "8", "16": "16", "32": "32"},
        {"fbp": "FBP", "tv": "TV"},
        lambda metrics: metrics["views"],
        ssim=False,
    ),
    Table(
        "mri-cs",
        "mri-cs",
        "| acceleration | zero-filled | CG-SENSE | TV-SENSE |",
        {"4": "4× (8 % centre)", "8": "8× (4 % centre)"},
        {"zero_filled": "zero-filled", "cg_sense": "CG-SENSE", "tv_sense": "TV-SENSE"},
        lambda metrics: metrics["accelerations"],
        name_ssim=True,
    ),
    Table(
        "mri-cs-64",
        "mri-cs",
        "| 64² | zero-filled | CG-SENSE | TV-SENSE | DDS + `mri-brain` |",
        {"4": "4× (ESPIRiT maps, 3×3 kernels)", "8": "8× (3 calibration lines, low-resolution maps)"},
        {"zero_filled": "zero-filled", "cg_sense": "CG-SENSE", "tv_sense": "TV-SENSE", "dds_mri_brain": "DDS"},
        lambda metrics: metrics["diffusion_64"]["accelerations"],
        bold="parts",
    ),
)
_CELL = re.compile(r"^([0-9.]+) dB(?: / (?:SSIM )?([0-9.]+))?$")


def _key(table: Table, row: str, column: str, metric: str) -> str:
    return f"{table.name}/{row}/{column}/{metric}"


def headline_numbers(table: Table, metrics: dict) -> dict[str, float]:
    """The numbers of ``table`` in a job's metrics (as read from its JSON), keyed ``table/row/column/metric``.

    Columns the metrics lack (the previous demo's, in a plain ``invsolve
    demo`` run) are left out.
    """
    scores = table.scores(metrics)
    return {
        _key(table, row, column, metric): float(scores[row][column][metric])
        for row in table.rows
        for column in table.columns
        if column in scores[row]
        for metric in table.metrics()
    }


def _table_lines(text: str, table: Table) -> list[str]:
    lines = text.splitlines()
    if table.header not in lines:
        raise ValueError(f"README.md has no table with the header {table.header!r} (table {table.name!r})")
    start = lines.index(table.header) + 1
    body = []
    for line in lines[start + 1 :]:  # after the |---| line
        if not line.startswith("|"):
            break
        body.append(line)
    return body


def readme_numbers(text: str, table: Table) -> dict[str, float]:
    """The numbers README.md shows in ``table``, keyed like :func:`headline_numbers`.

    Raises ``ValueError`` if the table is missing, has a row or cell this
    parser does not know, or lacks a row.
    """
    numbers, seen = {}, set()
    labels = {label: row for row, label in table.rows.items()}
    for line in _table_lines(text, table):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] not in labels:
            raise ValueError(f"README table {table.name!r} has a row {cells[0]!r}; expected one of {list(labels)}")
        if len(cells) != len(table.columns) + 1:
            raise ValueError(f"README table {table.name!r}, row {cells[0]!r}: {len(cells) - 1} cells, expected {len(table.columns)}")
        row = labels[cells[0]]
        seen.add(row)
        for column, cell in zip(table.columns, cells[1:]):
            match = _CELL.match(cell.replace("*", ""))
            if match is None or (match.group(2) is None) == table.ssim:
                raise ValueError(f"README table {table.name!r}, row {cells[0]!r}: cannot read the cell {cell!r}")
            numbers[_key(table, row, column, "psnr_db")] = float(match.group(1))
            if table.ssim:
                numbers[_key(table, row, column, "ssim")] = float(match.group(2))
    missing = [label for row, label in table.rows.items() if row not in seen]
    if missing:
        raise ValueError(f"README table {table.name!r} lacks the rows {missing}")
    return numbers


def markdown(table: Table, numbers: Mapping[str, float]) -> str:
    """``table`` as README.md writes it, filled with ``numbers`` (keyed like :func:`headline_numbers`)."""
    lines = [table.header, "|" + "---|" * (len(table.columns) + 1)]
    for index, (row, label) in enumerate(table.rows.items()):
        psnr = {column: numbers[_key(table, row, column, "psnr_db")] for column in table.columns}
        ssim = {column: numbers[_key(table, row, column, "ssim")] for column in table.columns} if table.ssim else {}
        # the best as displayed: a tie at the printed precision goes to the first column, so that a table
        # rebuilt from the README's rounded numbers is bolded like the one printed from the measurement
        best_psnr = max(psnr, key=lambda column: round(psnr[column], 1))
        best_ssim = max(ssim, key=lambda column: round(ssim[column], 2)) if ssim else None
        cells = []
        for column in table.columns:
            first = f"{psnr[column]:.1f} dB"
            if not table.ssim:
                cells.append(first)
                continue
            second = ("SSIM " if table.name_ssim and index == 0 and not cells else "") + f"{ssim[column]:.2f}"
            if table.bold == "cell" and column == best_psnr == best_ssim:
                cells.append(f"**{first} / {second}**")
                continue
            if table.bold is not None:
                first = f"**{first}**" if column == best_psnr else first
                second = f"**{second}**" if column == best_ssim else second
            cells.append(f"{first} / {second}")
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def drift(measured: Mapping[str, float], readme: Mapping[str, float]) -> list[str]:
    """The README numbers the measurement no longer matches within :data:`TOLERANCE`, one line each."""
    return [
        f"{key}: README {readme[key]:g}, code {measured[key]:.4g} (tolerance {TOLERANCE[key.rsplit('/', 1)[1]]:g})"
        for key in sorted(readme.keys() & measured.keys())
        if abs(measured[key] - readme[key]) > TOLERANCE[key.rsplit("/", 1)[1]]
    ]


def run_example(name: str, out: Path, environment: Mapping[str, str] | None = None) -> dict:
    """Run ``examples/<name>.py`` with its defaults into ``out``; its ``metrics.json``."""
    command = [sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(out), "--no-progress"]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=out.parent, env=environment)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr}")
    return json.loads((out / "metrics.json").read_text())


def previous_demo_scores(metrics: dict) -> dict[str, dict[str, float]]:
    """The previous demo's RED-Diff with ``ct-ellipses`` on the scan of the demo that wrote ``metrics``."""
    import torch

    from invsolve import demo
    from invsolve.datasets import ct_small_slice
    from invsolve.operators.ct import hounsfield_to_attenuation
    from invsolve.reconstruct import reconstruct

    shape = tuple(metrics["scan"]["image_pixels"])
    ct_small = hounsfield_to_attenuation(torch.nn.functional.adaptive_avg_pool2d(ct_small_slice()[None], shape))
    truth = torch.cat([demo.held_out_phantoms(1, demo._HELD_OUT_SEED), ct_small])  # the demo's two images
    operator, y = demo.ct_demo_scan(truth, metrics["scan"]["views"], seed=0)
    settings = dict(PREVIOUS_DEMO)
    result = reconstruct(y, operator, demo.ct_demo_prior(), "red-diff", steps=settings.pop("steps"), seed=0,
                         progress=False, **settings)
    scores = demo.ct_demo_scores(result.image, truth)
    labels = ("held_out_phantom", "ct_small")  # the demo's batch order
    return {label: {key: values[index] for key, values in scores.items()} for index, label in enumerate(labels)}


def run_job(job: str, work: Path, threads: int) -> dict:
    """Run one job into ``work``; its metrics (for the demo, with the previous demo's column)."""
    from _recording import thread_environment  # benchmarks/ on sys.path when run as a script

    from invsolve.demo import run_ct_demo, run_inpainting_demo

    if job == "demo-ct":
        metrics = json.loads(json.dumps(run_ct_demo(work, progress=False)))  # keys as in ct_metrics.json
        for label, scores in previous_demo_scores(metrics).items():
            metrics["scores"][label]["previous_demo_red_diff"] = scores
        return metrics
    if job == "demo-inpainting":
        return run_inpainting_demo(work, progress=False)
    return run_example(job.replace("-", "_"), work, thread_environment(threads))


def main() -> None:
    from _recording import pin_threads, results_path, run_metadata, save_run

    from invsolve.files import atomic_write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=JOBS, action="append", help="run only this job (repeatable; default all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--docs", default=str(REPOSITORY / "docs"), help="where the figures go (default: %(default)s)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/readme_figures[.<options>].json)")
    args = parser.parse_args()
    pin_threads(args.threads)
    path = results_path("readme_figures", parser, args)
    metadata = run_metadata()
    readme = (REPOSITORY / "README.md").read_text()
    jobs = args.only or list(JOBS)
    recorded: dict[str, Any] = {"jobs": {}, "headline": {}, "tables": {}, "readme_drift": []}
    with tempfile.TemporaryDirectory() as folder:
        for job in jobs:
            work = Path(folder) / job
            started = time.perf_counter()
            metrics = run_job(job, work, args.threads)
            recorded["jobs"][job] = {"wall_seconds": time.perf_counter() - started, "metrics": metrics}
            for produced, figure in FIGURES[job]:
                target = Path(args.docs) / figure
                atomic_write(target, lambda temporary: shutil.copyfile(work / produced, temporary))
                print(f"wrote {target}", file=sys.stderr)
    for table in TABLES:
        if table.job not in jobs:
            continue
        numbers = headline_numbers(table, recorded["jobs"][table.job]["metrics"])
        recorded["headline"].update(numbers)
        recorded["tables"][table.name] = markdown(table, numbers)
        recorded["readme_drift"] += drift(numbers, readme_numbers(readme, table))
        print(recorded["tables"][table.name] + "\n")
    for line in recorded["readme_drift"]:
        print(f"README drift: {line}", file=sys.stderr)
    print(json.dumps({job: round(entry["wall_seconds"], 1) for job, entry in recorded["jobs"].items()}))
    save_run(path, metadata, recorded)


if __name__ == "__main__":
    main()
