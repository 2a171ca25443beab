"""``invsolve augment`` and ``augment-merge`` end to end (issue 14, points 4 and 8): catalogue queries,
shards and their merge, resuming a killed run, FITS cutouts, appending, and bad input refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch
from astropy.table import Table

from invsolve.cli import main
from invsolve.datasets.galaxy_zoo import read_fits_cutouts
from invsolve.datasets.morphology import MORPHOLOGY
from invsolve.galaxy.augment import read_augmentation
from invsolve.galaxy.generation import sample_seed
from invsolve.priors import Conditioning, Normalization, UNetPrior, save_prior

TINY = {"channels": [8, 16], "attention_levels": [False, False], "num_head_channels": 8}
DUST = MORPHOLOGY.index("dust_lane")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny conditional prior of 16² stamps (weights perturbed: its outputs depend on the condition),
    an unconditional one, and a GZ2 Hart et al. table of 8 galaxies, 3 of them with dust lanes."""
    folder = tmp_path_factory.mktemp("augment")
    window = Normalization.from_range(-0.15, 1.15, "peak flux")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        prior = UNetPrior((1, 16, 16), prediction="v", normalization=window, inference_dtype="float32",
                          conditioning=Conditioning("vector", 37), guidance_scale=1.0, **TINY)
        unconditional = UNetPrior((1, 16, 16), normalization=window, **TINY)
        with torch.no_grad():
            for parameter in prior.parameters():
                parameter.add_(0.05 * torch.randn(parameter.shape))
    save_prior(folder / "galaxy.pt", prior)
    save_prior(folder / "plain.pt", unconditional)
    rng = np.random.default_rng(1)
    table = Table({"dr7objid": np.arange(100, 108, dtype=np.int64), "ra": rng.uniform(0, 360, 8),
                   "dec": rng.uniform(-10, 60, 8), "gz2_class": ["Er"] * 8})
    fractions = rng.dirichlet(np.ones(2), 8)
    for name in MORPHOLOGY.names:
        table[MORPHOLOGY.hart16_column(name)] = np.zeros(8)
    table[MORPHOLOGY.hart16_column("smooth")] = fractions[:, 0]
    table[MORPHOLOGY.hart16_column("features_or_disk")] = fractions[:, 1]
    table[MORPHOLOGY.hart16_column("dust_lane")] = [0.9, 0.1, 0.7, 0.0, 0.2, 0.6, 0.0, 0.3]
    table[MORPHOLOGY.hart16_column("odd.yes")] = [0.8, 0.2, 0.9, 0.1, 0.3, 0.7, 0.0, 0.4]
    table.write(folder / "gz2_hart16.csv", format="ascii.csv")
    return folder


def _augment(arguments, capsys):
    code = main(["augment", *map(str, arguments), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _job(files, out, *extra):
    return ["--prior", files / "galaxy.pt", "--catalog", files / "gz2_hart16.csv", "--query", "dust_lane>0.5",
            "--out", out, "--steps", 3, "--batch-size", 2, "--seed", 7, *extra]


def test_query_generates_for_the_matching_rows_with_provenance(files, tmp_path, capsys):
    out = tmp_path / "aug.h5"
    code, stdout, stderr = _augment([*_job(files, out), "--n", 5], capsys)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["samples"] == 5 and summary["plan"]["matching_rows"] == 3
    data = read_augmentation(out)
    assert data["images"].shape == (5, 1, 16, 16) and np.isfinite(data["images"]).all()
    assert set(data["source_rows"]) == {0, 2, 5}  # the rows with dust_lane > 0.5, each used once or twice
    assert np.bincount(data["source_rows"], minlength=8)[[0, 2, 5]].tolist() in ([2, 2, 1], [2, 1, 2], [1, 2, 2])
    assert (data["conditions"][:, DUST] > 0.5).all()
    np.testing.assert_array_equal(data["seeds"], [sample_seed(7, i) for i in range(5)])
    np.testing.assert_array_equal(data["indices"], np.arange(5))
    attrs = data["attrs"]
    assert attrs["format"] == "invsolve-augment" and attrs["guidance_scale"] == 1.0 and attrs["steps"] == 3
    assert json.loads(attrs["plan"])["query"] == "dust_lane>0.5" and attrs["catalog"] == "gz2_hart16.csv"
    assert len(attrs["prior_sha256"]) == 64 and json.loads(attrs["condition_names"]) == list(MORPHOLOGY.names)
    assert sorted(os.listdir(tmp_path)) == ["aug.h5"]  # no parts folder left behind
    # the condition matters: other vote fractions give other galaxies from the same seeds
    other = tmp_path / "other.h5"
    assert _augment([*_job(files, other)[:5], "dust_lane<0.5", *_job(files, other)[6:], "--n", 5], capsys)[0] == 0
    assert not np.allclose(read_augmentation(other)["images"], data["images"])


def test_shards_merge_into_the_whole_job(files, tmp_path, capsys):
    whole = tmp_path / "whole.h5"
    assert _augment([*_job(files, whole), "--n", 7], capsys)[0] == 0
    out = tmp_path / "sharded.h5"
    for k in range(3):
        code, _, stderr = _augment([*_job(files, out), "--n", 7, "--shard", f"{k}/3"], capsys)
        assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ["sharded.shard-0-of-3.h5", "sharded.shard-1-of-3.h5",
                                           "sharded.shard-2-of-3.h5", "whole.h5"]
    assert main(["augment-merge", str(out)]) == 0
    merged, reference = read_augmentation(out), read_augmentation(whole)
    np.testing.assert_array_equal(merged["indices"], np.arange(7))
    np.testing.assert_array_equal(merged["seeds"], reference["seeds"])
    np.testing.assert_array_equal(merged["conditions"], reference["conditions"])
    np.testing.assert_allclose(merged["images"], reference["images"], atol=1e-5)  # other batch boundaries
    assert merged["attrs"]["merged_from"] == 3
    capsys.readouterr()


def test_merge_refuses_missing_and_foreign_shards(files, tmp_path, capsys):
    out = tmp_path / "job.h5"
    assert _augment([*_job(files, out), "--n", 4, "--shard", "0/2"], capsys)[0] == 0
    assert main(["augment-merge", str(out)]) == 2
    assert "1 of 2 shards are missing next to" in capsys.readouterr().err and not out.exists()
    assert _augment([*_job(files, out), "--n", 4, "--shard", "1/2", "--seed", 8], capsys)[0] == 0
    assert main(["augment-merge", str(out)]) == 2
    assert "belongs to another job" in capsys.readouterr().err and not out.exists()


def test_a_killed_run_resumes_without_losing_or_duplicating(files, tmp_path):
    """Kill the command after a few batches (SIGKILL: no cleanup runs), then run it again."""
    out, reference = tmp_path / "resumed.h5", tmp_path / "reference.h5"
    command = [sys.executable, "-m", "invsolve.cli", "augment", *map(str, _job(files, out)), "--n", "40",
               "--batch-size", "1", "--steps", "6", "--no-progress"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=tmp_path.parent, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    parts = tmp_path / ".resumed.h5.parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("batch-*.npz"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(list(parts.glob("batch-*.npz")))
    assert 3 <= finished_before < 40 and not out.exists()  # nothing half-written where the output goes
    completed = subprocess.run(command, cwd=tmp_path.parent, env=environment, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["resumed_batches"] >= finished_before
    uninterrupted = subprocess.run([*command[:command.index("--out") + 1], str(reference),
                                    *command[command.index("--out") + 2:]], cwd=tmp_path.parent, env=environment,
                                   capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    resumed, straight = read_augmentation(out), read_augmentation(reference)
    np.testing.assert_array_equal(resumed["indices"], np.arange(40))
    np.testing.assert_array_equal(resumed["images"], straight["images"])  # same batches: bit for bit
    assert not parts.exists()


def test_fits_cutouts_carry_the_condition_and_read_back(files, tmp_path, capsys):
    out, cutouts = tmp_path / "aug.h5", tmp_path / "cutouts"
    assert _augment([*_job(files, out), "--n", 3, "--fits", cutouts], capsys)[0] == 0
    table = read_fits_cutouts(cutouts)
    data = read_augmentation(out)
    assert len(table) == 3 and sorted(os.listdir(cutouts))[0] == "aug_0000000.fits"
    np.testing.assert_allclose(np.asarray(table["morphology"]), data["conditions"], atol=1e-6)
    from astropy.io import fits

    with fits.open(cutouts / "aug_0000001.fits") as hdus:
        header = hdus[0].header
        assert header["SEED"] == sample_seed(7, 1) and header["CATROW"] in (0, 2, 5) and "CTYPE1" not in header
        np.testing.assert_allclose(hdus[0].data, data["images"][1, 0])


def test_append_continues_indices_and_seeds(files, tmp_path, capsys):
    out = tmp_path / "aug.h5"
    assert _augment([*_job(files, out), "--n", 2], capsys)[0] == 0
    code, _, stderr = _augment([*_job(files, out), "--n", 3, "--append"], capsys)
    assert code == 0, stderr
    data = read_augmentation(out)
    np.testing.assert_array_equal(data["indices"], np.arange(5))
    np.testing.assert_array_equal(data["seeds"], [sample_seed(7, i) for i in range(5)])
    code, _, stderr = _augment([*_job(files, out), "--n", 3, "--append", "--guidance", "2"], capsys)
    assert code == 2 and "its guidance_scale is 1.0, this run's 2.0" in stderr


def test_oversampling_and_explicit_vectors(files, tmp_path, capsys):
    out = tmp_path / "over.h5"
    arguments = ["--prior", files / "galaxy.pt", "--catalog", files / "gz2_hart16.csv", "--out", out, "--steps", 2,
                 "--oversample", "dust_lane>0.5:3", "--oversample", "odd.yes<0.25:2"]
    code, stdout, stderr = _augment(arguments, capsys)
    assert code == 0, stderr
    assert json.loads(stdout)["samples"] == 3 * 3 + 2 * 3  # rows 0, 2, 5 thrice; rows 1, 3, 6 twice
    np.testing.assert_array_equal(read_augmentation(out)["source_rows"], [0, 0, 0, 2, 2, 2, 5, 5, 5, 1, 1, 3, 3, 6, 6])
    vectors = tmp_path / "vectors.h5"
    code, _, stderr = _augment(["--prior", files / "galaxy.pt", "--out", vectors, "--steps", 2, "--n", 3,
                                "--vector", "smooth=1,odd.yes=1,dust_lane=1", "--vector", "bar=1"], capsys)
    assert code == 0, stderr
    data = read_augmentation(vectors)
    assert data["conditions"][[0, 2], DUST].tolist() == [1.0, 1.0] and data["conditions"][1, MORPHOLOGY.index("bar")] == 1
    assert (data["source_rows"] == -1).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a + ["--n", "0"], "--n must be >= 1, got 0"),
        (lambda a: a + ["--n", "2", "--shard", "3/2"], r"--shard 3/2: the shard index K must be in 0..N-1"),
        (lambda a: a + ["--n", "2", "--shard", "a/b"], "--shard must be K/N with integers"),
        (lambda a: [x if x != "dust_lane>0.5" else "dust>0.5" for x in a] + ["--n", "2"], "'dust'"),
        (lambda a: [x if x != "dust_lane>0.5" else "dust_lane>0.95" for x in a] + ["--n", "2"],
         "matches none of the 8 rows"),
        (lambda a: a, "--query needs --n"),
        (lambda a: a + ["--n", "2", "--vector", "bar=1"], "exactly one of --query"),
        (lambda a: [x for x in a if x not in ("--catalog",) and not str(x).endswith(".csv")] + ["--n", "2"],
         "give the catalogue with --catalog"),
        (lambda a: a + ["--n", "2", "--append", "--overwrite"], "exclude each other"),
        (lambda a: [str(x).replace("galaxy.pt", "plain.pt") for x in a] + ["--n", "2"],
         "must be a prior conditioned on the 37 Galaxy Zoo 2 vote fractions"),
        (lambda a: [str(x).replace("aug.h5", "aug.png") for x in a] + ["--n", "2"], "expected an HDF5 file name"),
    ],
    ids=["n", "shard-order", "shard-text", "unknown-column", "no-match", "no-n", "two-modes", "no-catalog",
         "append-overwrite", "unconditional", "suffix"],
)
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, change, message):
    out = tmp_path / "aug.h5"
    code, stdout, stderr = _augment(change([str(x) for x in _job(files, out)]), capsys)
    assert code == 2 and stdout == ""
    assert stderr.startswith("invsolve augment: error: ") and stderr.count("\n") == 1, stderr
    import re

    assert re.search(message, stderr), stderr
    assert os.listdir(tmp_path) == []


def test_an_existing_output_is_refused_unless_told(files, tmp_path, capsys):
    out = tmp_path / "aug.h5"
    out.write_bytes(b"precious")
    code, _, stderr = _augment([*_job(files, out), "--n", 2], capsys)
    assert code == 2 and "exists; pass --append to add samples to it or --overwrite to replace it" in stderr
    assert out.read_bytes() == b"precious"
    assert _augment([*_job(files, out), "--n", 2, "--overwrite"], capsys)[0] == 0
    with h5py.File(out) as handle:
        assert handle["images"].shape == (2, 1, 16, 16)
