"""Mutation testing of the core modules with mutmut 3: surviving mutants per module.

mutmut (https://github.com/boxed/mutmut) copies the source into ``./mutants``,
rewrites every function into a trampoline that dispatches to the original or
to one of its mutants (an operator, a constant, a keyword argument changed),
runs the selected tests once to learn which tests reach which function, and
then runs, for each mutant, the tests that reach it.  A mutant no test fails
on "survived": either the tests miss a change of behaviour, or the mutant is
equivalent (it computes the same thing).

mutmut names a mutant after the path of its file (``invsolve/oracle.py`` ->
``invsolve.oracle``), while this package maps the root folders ``operators/``,
``priors/`` and ``datasets/`` into ``invsolve`` (``[tool.setuptools.package-dir]``),
so ``operators/ct/projector.py`` is imported as
``invsolve.operators.ct.projector``.  This script therefore stages the
installed layout in a work folder -- ``invsolve/`` with ``operators/``,
``priors/`` and ``datasets/`` inside it, ``tests/`` and ``pyproject.toml``
beside it -- and runs ``python -m mutmut run`` there, one module at a time,
with ``[tool.mutmut]`` of ``pyproject.toml`` plus the module's ``only_mutate``
file(s) and test selection (:data:`MODULES`).  Each mutant runs in one worker
(``--max-children 1``) with ``OMP_NUM_THREADS=1``.

The samplers' tests run every sampler to convergence on the oracle problems
(about 2.5 minutes a pass), so the sampler package is mutated in full but only
a documented sample of its mutants is run (``MODULES["samplers"].sample``): five
of the samplers (the shared code -- problem.py, diffusion.py, base.py -- is
reached by every sampler test, about 4 minutes a mutant); ``daps`` and
``pnp_dm`` mutate those two samplers' modules on their own.  ``shared`` runs
the shared code's mutants against the sampler tests without the oracle tests
over 10 s (:data:`SLOW_ORACLE_TESTS`, about half an hour); ``slice3d`` and
``joint_dehaze`` run their modules' mutants against their own tests and the
faster oracle tests.  ``--sample GLOB`` runs only the mutants whose names
match (e.g. ``'*__mutmut_*[05]'``, a systematic fifth of every function).

Usage::

    python benchmarks/mutation.py                      # every module (about 3 h on 2 busy cores)
    python benchmarks/mutation.py --module metrics --module fft
    python benchmarks/mutation.py --module projector --keep --workdir /tmp/mutation
    python benchmarks/mutation.py --baseline           # without the tests issue 11 added

Prints one JSON object per module and writes them all (merged with the
modules of an earlier run that were not rerun) to
``benchmarks/results/mutation.json``: the number of mutants run, how many
were killed, survived, timed out or reached by no test, the survival rate
``(survived + no test) / mutants``, and the survivors' names (``python -m
mutmut show NAME`` in the kept ``--workdir/MODULE`` prints a survivor's diff).
mutmut refuses to start when a selected test fails on the unmutated code;
``--deselect TEST_ID`` leaves such a test out.  The staged copies live in a
temporary folder (``--workdir``), never in the repository, and are deleted
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: the root folders installed inside the invsolve package ([tool.setuptools.package-dir])
PACKAGE_DIRS = {
    "invsolve": "invsolve",
    "invsolve/operators": "operators",
    "invsolve/priors": "priors",
    "invsolve/datasets": "datasets",
}
#: files beside the package that the tests read (tests/conftest.py loads benchmarks/readme_figures.py)
SUPPORT = ("benchmarks", "configs", "examples", "README.md")
#: mutmut exit codes (mutmut.stats.status_by_exit_code) grouped as reported here
STATUS = {
    **{code: "killed" for code in (1, 3)},
    0: "survived",
    **{code: "no_tests" for code in (5, 33)},
    **{code: "timeout" for code in (36, 24, -24, 152, 255)},
}


@dataclass(frozen=True)
class Target:
    """What to mutate and which tests run against it.

    ``files``: paths in the staged layout (``invsolve/...``), ``only_mutate``
    globs; ``tests``: pytest arguments that select the module's tests;
    ``sample``: mutant-name globs to run (``None``: all mutants); ``slow``:
    test ids of ``tests`` to leave out (the slowest oracle tests, where every
    surviving mutant would pay for them).
    """

    files: tuple[str, ...]
    tests: tuple[str, ...]
    sample: tuple[str, ...] | None = None
    #: test ids left out of ``tests`` (each passed as ``--deselect``)
    slow: tuple[str, ...] = ()


SAMPLER_TESTS = (
    "tests/invsolve/test_sampler_oracle.py",
    "tests/invsolve/test_reconstruct.py",
    "tests/invsolve/test_sampler_mutants.py",
    "tests/invsolve/test_sampler_core_mutants.py",
    "tests/invsolve/test_dpir.py",
)
SHARED_FILES = ("invsolve/samplers/base.py", "invsolve/samplers/problem.py", "invsolve/samplers/diffusion.py")
#: the sampler oracle tests over 10 s at one thread (DAPS, PnP-DM, the MBIR sampler and DPS with
#: their hundreds of network calls): "shared", "slice3d" and "joint_dehaze" leave them out
SLOW_ORACLE_TESTS = tuple(
    f"tests/invsolve/test_sampler_oracle.py::{test}"
    for test in (
        "test_pnp_dm_matches_the_exact_posterior_within_monte_carlo_error[mri]",
        "test_pnp_dm_matches_the_exact_posterior_within_monte_carlo_error[ct]",
        *(
            f"test_approximate_samplers_keep_their_measured_error[{case}]"
            for case in (
                "pnp-dm-mask", "daps-mri", "daps-ct", "daps-mask", "mbir-mri", "mbir-mask", "dps-mri", "dps-mask", "dps-ct",
                "diffpir-ct",
            )
        ),
    )
)
MODULES: dict[str, Target] = {
    "projector": Target(
        ("invsolve/operators/ct/projector.py",),
        (
            "tests/operators/test_ct.py",
            "tests/operators/test_fbp.py",
            "tests/operators/test_odl_operator.py",
            "tests/operators/test_properties.py::test_ct_geometries_build_a_working_ray_transform",
            "tests/operators/test_projector_mutants.py",
        ),
    ),
    "fft": Target(("invsolve/operators/mri/fft.py",), ("tests/operators/test_mri.py", "tests/operators/test_fft_mutants.py")),
    "samplers": Target(
        ("invsolve/samplers/*",),
        SAMPLER_TESTS,
        sample=(
            "invsolve.samplers.red_diff.*",
            "invsolve.samplers.dds.*",
            "invsolve.samplers.dpir.*",
            "invsolve.samplers.diffpir.*",
            "invsolve.samplers.dps.*",
        ),
    ),
    # the two samplers the sample above left out, each on its own: their oracle tests take 10-15 s a mutant
    "daps": Target(("invsolve/samplers/daps.py",), SAMPLER_TESTS),
    "pnp_dm": Target(("invsolve/samplers/pnp_dm.py",), SAMPLER_TESTS),
    # the code every sampler shares: every sampler test reaches it (about 9 minutes a pass at one
    # thread), so its mutants run against the sampler tests without the oracle tests over 10 s
    "shared": Target(SHARED_FILES, SAMPLER_TESTS, slow=SLOW_ORACLE_TESTS),
    "slice3d": Target(
        ("invsolve/samplers/slice3d.py",),
        (
            "tests/invsolve/test_slice3d.py",
            "tests/invsolve/test_slabs.py",
            "tests/invsolve/test_sampler_oracle.py::test_approximate_samplers_keep_their_measured_error",
            "tests/invsolve/test_sampler_mutants.py",
        ),
        slow=SLOW_ORACLE_TESTS,
    ),
    "joint_dehaze": Target(
        ("invsolve/samplers/joint_dehaze.py",),
        (
            "tests/invsolve/test_joint_dehaze.py",
            "tests/invsolve/test_sampler_oracle.py::test_approximate_samplers_keep_their_measured_error",
            "tests/invsolve/test_sampler_mutants.py",
        ),
        slow=SLOW_ORACLE_TESTS,
    ),
    "oracle": Target(
        ("invsolve/oracle.py",),
        (
            "tests/invsolve/test_oracle.py",
            "tests/invsolve/test_properties.py::test_gaussian_posterior_is_finite_with_a_covariance_that_shrinks",
            "tests/invsolve/test_properties.py::test_gaussian_posterior_refuses_bad_input_naming_it",
            "tests/invsolve/test_oracle_mutants.py",
        ),
    ),
    "metrics": Target(
        ("invsolve/metrics.py",),
        (
            "tests/invsolve/test_metrics.py",
            "tests/invsolve/test_properties.py::test_metrics_are_finite_except_psnr_of_identical_images",
            "tests/invsolve/test_properties.py::test_metrics_refuse_bad_input_naming_it",
            "tests/invsolve/test_metrics_mutants.py",
        ),
    ),
}


def _toml_value(value: object) -> str:
    """A TOML literal for the strings, numbers, booleans and lists of [tool.mutmut]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


#: pytest plugin loaded in the staged runs: tests/conftest.py asks torch for two intra-op
#: threads, and a worker that mutmut forks from a process whose OpenMP pool has started
#: hangs in its first parallel region; with one thread no pool is ever started.
THREAD_PLUGIN = "_mutation_threads"
THREAD_PLUGIN_SOURCE = """import torch


def pytest_collection_finish(session):
    torch.set_num_threads(1)
"""


#: the test files issue 11 added (this script's ``*_mutants.py`` and the property tests);
#: ``--baseline`` leaves them out to measure the tests from before
NEW_TESTS = ("_mutants.py", "test_properties.py")


def selected_tests(target: Target, baseline: bool, deselect: tuple[str, ...] = ()) -> list[str]:
    """The module's test files that exist (for ``baseline`` without :data:`NEW_TESTS`),
    then ``--deselect`` for each test id in ``deselect``."""
    tests = [
        test
        for test in target.tests
        if (ROOT / test.split("::")[0]).exists() and not (baseline and test.split("::")[0].endswith(NEW_TESTS))
    ]
    return tests + [argument for test in (*target.slow, *deselect) for argument in ("--deselect", test)]


def staged_pyproject(target: Target, baseline: bool = False, deselect: tuple[str, ...] = ()) -> str:
    """The repository's pyproject.toml with ``[tool.mutmut]`` completed for ``target``."""
    text = (ROOT / "pyproject.toml").read_text()
    settings = dict(tomllib.loads(text).get("tool", {}).get("mutmut", {}))
    settings["pytest_add_cli_args"] = [*settings.get("pytest_add_cli_args", []), "-p", THREAD_PLUGIN]
    settings["also_copy"] = [*settings.get("also_copy", []), THREAD_PLUGIN + ".py", *SUPPORT]
    settings["only_mutate"] = list(target.files)
    settings["pytest_add_cli_args_test_selection"] = selected_tests(target, baseline, deselect)
    lines, skipping = [], False
    for line in text.splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            lines.append(line)
    lines += ["", "[tool.mutmut]"] + [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def stage(target: Target, folder: Path, baseline: bool, deselect: tuple[str, ...]) -> None:
    """Copy the package in its installed layout, the tests and the configuration into ``folder``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for staged, source in PACKAGE_DIRS.items():
        shutil.copytree(ROOT / source, folder / staged, ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(ROOT / "tests", folder / "tests", ignore=ignore)
    for name in SUPPORT:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "results"))
        elif (ROOT / name).exists():
            shutil.copy2(ROOT / name, folder / name)
    (folder / "pyproject.toml").write_text(staged_pyproject(target, baseline, deselect))
    (folder / (THREAD_PLUGIN + ".py")).write_text(THREAD_PLUGIN_SOURCE)


def summarise(folder: Path, target: Target) -> dict:
    """Counts and survivors from mutmut's ``mutants/**/*.meta`` files."""
    import fnmatch

    counts = {"killed": 0, "survived": 0, "timeout": 0, "no_tests": 0, "other": 0}
    survivors = []
    for meta in sorted((folder / "mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if target.sample is not None and not any(fnmatch.fnmatch(name, pattern) for pattern in target.sample):
                continue
            if code is None:  # not run (outside the sample)
                continue
            status = STATUS.get(code, "other")
            counts[status] += 1
            if status == "survived":
                survivors.append(name)
    total = sum(counts.values())
    # a mutant no test reaches survives as surely as one the tests run and pass
    not_killed = counts["survived"] + counts["no_tests"] + counts["other"]
    return {
        "mutants": total,
        **counts,
        "survival_rate": round(not_killed / total, 4) if total else None,
        "survivors": survivors,
    }


def run_module(
    name: str,
    workdir: Path,
    baseline: bool = False,
    deselect: tuple[str, ...] = (),
    sample: tuple[str, ...] | None = None,
) -> dict:
    """Stage, run mutmut on module ``name`` and summarise; the stage stays in ``workdir/name``.

    ``sample``: mutant-name globs that replace the target's own sample."""
    target = MODULES[name] if sample is None else replace(MODULES[name], sample=sample)
    folder = workdir / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    stage(target, folder, baseline, deselect)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", "1", *(target.sample or ())]
    subprocess.run(command, cwd=folder, env=env, check=True)
    record = {
        "module": name,
        "files": list(target.files),
        "tests": selected_tests(target, baseline, deselect),
        "sample": list(target.sample) if target.sample else None,
        **summarise(folder, target),
        "seconds": round(time.perf_counter() - started),
    }
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", choices=sorted(MODULES), action="append", help="module(s) to mutate (default all)")
    parser.add_argument("--workdir", type=Path, help="where to stage (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the staged folders (for `mutmut show NAME` there)")
    parser.add_argument(
        "--baseline", action="store_true", help="leave out the tests added by issue 11 (NEW_TESTS): the run before them"
    )
    parser.add_argument(
        "--deselect",
        action="append",
        default=[],
        metavar="TEST_ID",
        help="leave out a test (mutmut stops if a selected test fails on the unmutated code)",
    )
    parser.add_argument(
        "--sample",
        action="append",
        metavar="GLOB",
        help="run only the mutants whose names match (replaces a module's own sample), e.g. '*__mutmut_*[05]'",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "mutation.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="invsolve-mutation-"))
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    sample = tuple(args.sample) if args.sample else None
    try:
        for name in args.module or list(MODULES):
            record = run_module(name, workdir.resolve(), args.baseline, tuple(args.deselect), sample)
            print(json.dumps(record), flush=True)
            results[name] = record
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
