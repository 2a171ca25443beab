"""A long ``reconstruct`` interrupted part-way resumes from its checkpoint to the uninterrupted result."""

from __future__ import annotations

import pytest
import torch

import invsolve
from invsolve.oracle import oracle_problem

_RUN = dict(sampler="dps", steps=20, n_samples=5, seed=7, progress=False)


@pytest.fixture(scope="module")
def problem():
    return oracle_problem("mask")


def _reconstruct(problem, **options):
    return invsolve.reconstruct(problem.y, problem.operator, problem.prior, noise_std=problem.noise_std, **{**_RUN, **options})


class _Interrupt(Exception):
    pass


def _stop_after(runs: int):
    """A callback that raises in the last step of sampler run number ``runs``, before that run is kept."""
    finished = []

    def callback(step):
        if step.index == step.total - 1:
            finished.append(step.index)
            if len(finished) == runs:
                raise _Interrupt

    return callback


def test_checkpointing_does_not_change_the_samples(problem, tmp_path):
    plain = _reconstruct(problem)
    checkpointed = _reconstruct(problem, checkpoint=tmp_path / "samples.pt")
    assert torch.equal(plain.samples, checkpointed.samples)
    assert (tmp_path / "samples.pt").exists()


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(problem, tmp_path):
    path = tmp_path / "samples.pt"
    with pytest.raises(_Interrupt):
        _reconstruct(problem, checkpoint=path, callback=_stop_after(3))
    # two runs finished and were kept; the third was interrupted before its save
    assert [draw.shape[1] for draw in torch.load(path, weights_only=True)["draws"]] == [1, 1]
    steps_seen = []
    resumed = _reconstruct(problem, checkpoint=path, callback=lambda step: steps_seen.append(step.index))
    assert len(steps_seen) == 3 * _RUN["steps"]  # only the three missing samples were drawn
    assert torch.equal(resumed.samples, _reconstruct(problem).samples)
    # a finished checkpoint is read back without drawing anything
    steps_seen.clear()
    again = _reconstruct(problem, checkpoint=path, callback=lambda step: steps_seen.append(step.index))
    assert steps_seen == [] and torch.equal(again.samples, resumed.samples)


def test_several_samples_per_run_resume_too(problem, tmp_path):
    path = tmp_path / "samples.pt"
    with pytest.raises(_Interrupt):
        _reconstruct(problem, checkpoint=path, max_batch=2, callback=_stop_after(2))
    resumed = _reconstruct(problem, checkpoint=path, max_batch=2)
    assert torch.equal(resumed.samples, _reconstruct(problem, max_batch=2).samples)


@pytest.mark.parametrize(
    "change, differing",
    [(dict(seed=8), "settings"), (dict(steps=21), "settings"), (dict(sampler="dds"), "settings"), ("y", "measurement")],
)
def test_a_checkpoint_of_another_run_is_refused(problem, tmp_path, change, differing):
    path = tmp_path / "samples.pt"
    with pytest.raises(_Interrupt):
        _reconstruct(problem, checkpoint=path, callback=_stop_after(2))  # one sample kept
    before = path.read_bytes()
    if change == "y":
        call = lambda: invsolve.reconstruct(  # noqa: E731
            problem.y + 1.0, problem.operator, problem.prior, noise_std=problem.noise_std, checkpoint=path, **_RUN
        )
    else:
        call = lambda: _reconstruct(problem, checkpoint=path, **change)  # noqa: E731
    with pytest.raises(ValueError, match=f"checkpoint {path} belongs to another run \\(its {differing} differ"):
        call()
    assert path.read_bytes() == before


def test_a_checkpoint_of_a_run_from_another_start_image_is_refused(problem, tmp_path):
    path = tmp_path / "samples.pt"
    start = problem.operator.adjoint(problem.y)
    with pytest.raises(_Interrupt):
        _reconstruct(problem, checkpoint=path, start_time=0.5, start_image=start, callback=_stop_after(2))
    with pytest.raises(ValueError, match=r"belongs to another run \(its start_image differ"):
        _reconstruct(problem, checkpoint=path, start_time=0.5, start_image=start + 1.0)
    resumed = _reconstruct(problem, checkpoint=path, start_time=0.5, start_image=start)
    assert torch.equal(resumed.samples, _reconstruct(problem, start_time=0.5, start_image=start).samples)


def test_a_file_that_is_not_a_checkpoint_is_refused_by_name(problem, tmp_path):
    path = tmp_path / "samples.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"checkpoint {path} is not a readable sample checkpoint"):
        _reconstruct(problem, checkpoint=path)
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="is not an invsolve sample checkpoint"):
        _reconstruct(problem, checkpoint=path)


def test_trajectories_are_not_resumable(problem, tmp_path):
    with pytest.raises(ValueError, match="trajectory=True cannot be resumed"):
        _reconstruct(problem, checkpoint=tmp_path / "samples.pt", trajectory=True)
