import math

import numpy as np
import pytest
import torch

from invsolve.operators.mri import check_center_lines, equispaced_fraction_mask, poisson_disc_mask, random_mask


def centre_block(num_cols, center_fraction):
    """fastMRI's centre block: round(N·f) columns from (N − n_low + 1) // 2."""
    num_low = round(num_cols * center_fraction)
    pad = (num_cols - num_low + 1) // 2
    return num_low, pad


# -- random_mask ----------------------------------------------------------------------


@pytest.mark.parametrize("num_cols, fraction", [(368, 0.08), (320, 0.04), (37, 0.1), (36, 0.1), (15, 0.2)])
def test_random_mask_centre_block_is_fastmris(num_cols, fraction):
    num_low, pad = centre_block(num_cols, fraction)
    for seed in range(5):
        mask = random_mask(num_cols, fraction, 4, seed=seed)
        assert mask.dtype == torch.bool and mask.shape == (num_cols,)
        assert bool(mask[pad : pad + num_low].all())
        assert check_center_lines(mask)[0] >= num_low
        assert pad <= num_cols // 2 < pad + num_low  # the block holds the zero frequency


def test_random_mask_acceleration_matches_the_formula_on_average():
    num_cols, fraction, acceleration = 368, 0.08, 4
    num_low, pad = centre_block(num_cols, fraction)
    probability = (num_cols / acceleration - num_low) / (num_cols - num_low)
    seeds = 400
    masks = torch.stack([random_mask(num_cols, fraction, acceleration, seed=s) for s in range(seeds)]).double()
    outside = torch.ones(num_cols, dtype=torch.bool)
    outside[pad : pad + num_low] = False
    # E[#columns] = num_cols / acceleration exactly; the count is binomial outside the centre
    counts = masks.sum(dim=1)
    std = math.sqrt((num_cols - num_low) * probability * (1 - probability) / seeds)
    assert abs(float(counts.mean()) - num_cols / acceleration) < 4 * std
    per_column = masks[:, outside].mean(dim=0)
    assert abs(float(per_column.mean()) - probability) < 4 * math.sqrt(probability * (1 - probability) / (seeds * int(outside.sum())))


def test_random_mask_is_seeded():
    first = random_mask(64, 0.08, 4, seed=3)
    assert torch.equal(first, random_mask(64, 0.08, 4, seed=3))
    assert torch.equal(first, random_mask(64, 0.08, 4, seed=torch.Generator().manual_seed(3)))
    assert not torch.equal(first, random_mask(64, 0.08, 4, seed=4))
    generator = torch.Generator().manual_seed(0)
    assert not torch.equal(random_mask(64, 0.08, 4, seed=generator), random_mask(64, 0.08, 4, seed=generator))


def test_lists_of_fractions_and_accelerations_are_drawn_as_pairs():
    fractions = {32: [], 16: []}  # centre columns of 8 % and 4 % of 400
    for seed in range(60):
        mask = random_mask(400, [0.08, 0.04], [4, 8], seed=seed)
        num_low = 32 if bool(mask[184:216].all()) else 16  # blocks [184, 216) and [192, 208)
        assert bool(mask[192:208].all())
        fractions[num_low].append(float(mask.double().mean()))
    assert fractions[32] and fractions[16]  # both pairs occur ...
    # ... and each centre width comes with its own acceleration
    assert abs(np.mean(fractions[32]) - 1 / 4) < 0.02 and abs(np.mean(fractions[16]) - 1 / 8) < 0.02
    # any combination: the lists may differ in length
    wide = [bool(random_mask(100, [0.1, 0.2], [2], seed=s, allow_any_combination=True)[40:60].all()) for s in range(30)]
    assert any(wide) and not all(wide)


# -- equispaced_fraction_mask -----------------------------------------------------------


def fastmri_equispaced(num_cols, fraction, acceleration, offset):
    """fastMRI's EquispacedMaskFractionFunc for a given offset, in NumPy."""
    num_low = round(num_cols * fraction)
    mask = np.zeros(num_cols, dtype=bool)
    pad = (num_cols - num_low + 1) // 2
    mask[pad : pad + num_low] = True
    adjusted = (acceleration * (num_low - num_cols)) / (num_low * acceleration - num_cols)
    mask[np.around(np.arange(offset, num_cols - 1, adjusted)).astype(np.uint)] = True
    return mask, adjusted


@pytest.mark.parametrize("num_cols, fraction, acceleration", [(368, 0.08, 4), (320, 0.04, 8), (37, 0.1, 3), (640, 0.08, 4)])
def test_equispaced_mask_matches_fastmri_for_every_offset(num_cols, fraction, acceleration):
    _, adjusted = fastmri_equispaced(num_cols, fraction, acceleration, 0)
    for offset in range(round(adjusted)):
        expected, _ = fastmri_equispaced(num_cols, fraction, acceleration, offset)
        mask = equispaced_fraction_mask(num_cols, fraction, acceleration, offset=offset)
        assert np.array_equal(mask.numpy(), expected)
        # the adjusted spacing makes the overall fraction 1/acceleration (up to rounding)
        assert abs(int(mask.sum()) - num_cols / acceleration) <= 2


def test_equispaced_columns_are_spaced_by_the_adjusted_acceleration():
    num_cols, fraction, acceleration = 368, 0.08, 4
    num_low, pad = centre_block(num_cols, fraction)
    adjusted = acceleration * (num_low - num_cols) / (num_low * acceleration - num_cols)
    mask = equispaced_fraction_mask(num_cols, fraction, acceleration, offset=1)
    outside = [c for c in mask.nonzero().squeeze(1).tolist() if not pad - 1 <= c <= pad + num_low]
    gaps = set(np.diff(outside).tolist()) - {max(np.diff(outside))}  # one jump crosses the centre block
    assert gaps <= {math.floor(adjusted), math.ceil(adjusted)}
    assert outside[0] == 1


def test_equispaced_offset_is_drawn_uniformly_and_seeded():
    num_cols, fraction, acceleration = 100, 0.1, 4
    _, adjusted = fastmri_equispaced(num_cols, fraction, acceleration, 0)
    masks = {tuple(equispaced_fraction_mask(num_cols, fraction, acceleration, seed=s).tolist()) for s in range(40)}
    expected = {tuple(fastmri_equispaced(num_cols, fraction, acceleration, o)[0].tolist()) for o in range(round(adjusted))}
    assert masks == expected
    assert torch.equal(equispaced_fraction_mask(100, 0.1, 4, seed=2), equispaced_fraction_mask(100, 0.1, 4, seed=2))


# -- poisson_disc_mask ----------------------------------------------------------------


@pytest.mark.parametrize("shape, acceleration", [((64, 64), 4), ((48, 40), 6), ((64, 48), 8)])
def test_poisson_disc_mask_reaches_the_acceleration(shape, acceleration):
    mask = poisson_disc_mask(shape, acceleration, center_fraction=0.125, seed=0)
    assert mask.dtype == torch.bool and mask.shape == shape
    total = shape[0] * shape[1]
    assert abs(int(mask.sum()) - total / acceleration) <= 0.02 * total / acceleration
    # calibration box, placed like fastMRI's centre block on each axis
    for axis, n in enumerate(shape):
        num_low, pad = centre_block(n, 0.125)
        assert check_center_lines(mask)[axis] >= num_low
    (l1, p1), (l2, p2) = centre_block(shape[0], 0.125), centre_block(shape[1], 0.125)
    assert bool(mask[p1 : p1 + l1, p2 : p2 + l2].all())
    assert not bool(mask[0, 0] | mask[0, -1] | mask[-1, 0] | mask[-1, -1])  # corners cropped


def test_poisson_disc_density_falls_with_radius_and_samples_are_spread():
    n = 64
    mask = poisson_disc_mask((n, n), 5, center_fraction=0.1, seed=1)
    index = torch.arange(n, dtype=torch.float64) - n // 2
    radius = torch.sqrt(index[:, None] ** 2 + index[None, :] ** 2) / (n / 2)
    rings = [(0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9)]
    density = [float(mask[(radius >= a) & (radius < b)].double().mean()) for a, b in rings]
    assert all(inner > outer for inner, outer in zip(density, density[1:]))
    # Poisson disc: in the sparse outer ring no two samples touch (8-neighbours)
    outer = mask & (radius >= 0.7)
    padded = torch.nn.functional.pad(outer, (1, 1, 1, 1))
    touching = sum(
        int((outer & padded[1 + dy : 1 + dy + n, 1 + dx : 1 + dx + n]).sum())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dy, dx) != (0, 0)
    )
    assert touching == 0 and int(outer.sum()) >= 30


def test_poisson_disc_mask_is_seeded_and_fast_enough_at_256():
    first = poisson_disc_mask((32, 32), 3, seed=5)
    assert torch.equal(first, poisson_disc_mask((32, 32), 3, seed=5))
    assert not torch.equal(first, poisson_disc_mask((32, 32), 3, seed=6))
    big = poisson_disc_mask((256, 256), 8, seed=0)
    assert abs(65536 / int(big.sum()) - 8) < 0.2


def test_poisson_disc_without_crop_reaches_low_accelerations():
    mask = poisson_disc_mask((32, 32), 1.2, center_fraction=0.1, seed=0, crop_corners=False)
    assert abs(1024 / int(mask.sum()) - 1.2) < 0.05


# -- check_center_lines ---------------------------------------------------------------


def test_check_center_lines_measures_the_centre_run():
    mask = torch.zeros(16, dtype=torch.bool)
    mask[6:11] = True
    mask[[0, 3, 13]] = True
    assert check_center_lines(mask) == (5,)
    assert check_center_lines(mask.double()) == (5,)
    assert check_center_lines(mask, min_lines=5) == (5,)
    plane = torch.zeros(8, 10, dtype=torch.bool)
    plane[3:6, 4:8] = True
    assert check_center_lines(plane) == (3, 4)
    assert check_center_lines(plane[None]) == (1, 3, 4)


@pytest.mark.parametrize(
    "mask, kwargs, error, message",
    [
        (torch.tensor([1, 1, 0, 0, 0, 1, 1, 0]), {}, ValueError, r"no fully sampled centre lines: the zero frequency at index \(4,\) is not sampled"),
        (torch.tensor([0, 0, 0, 1, 1, 0, 0, 0]), {"min_lines": 3}, ValueError, "at least 3 fully sampled centre lines along axis 0, got 2"),
        (torch.tensor([0.0, 0.5, 1.0]), {}, ValueError, "mask must be boolean or hold only 0 and 1"),
        (torch.tensor(True), {}, ValueError, "mask must have at least one axis"),
        ([1, 1], {}, TypeError, "mask must be a torch.Tensor, got list"),
    ],
)
def test_check_center_lines_errors(mask, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_center_lines(mask, **kwargs)


def test_a_centre_fraction_rounding_to_zero_columns_is_caught():
    mask = random_mask(100, 0.004, 4, seed=0)  # round(0.4) = 0 centre columns
    mask[50] = False
    with pytest.raises(ValueError, match="no fully sampled centre lines"):
        check_center_lines(mask)


# -- argument errors --------------------------------------------------------------------


@pytest.mark.parametrize("make", [random_mask, equispaced_fraction_mask])
@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((64, 0.08, 0.5), {}, ValueError, "acceleration must be a finite number >= 1, got 0.5"),
        ((64, 0.0, 4), {}, ValueError, r"center_fraction must lie in \(0, 1\), got 0.0"),
        ((64, 1.0, 4), {}, ValueError, r"center_fraction must lie in \(0, 1\), got 1.0"),
        ((64, -0.1, 4), {}, ValueError, r"center_fraction must lie in \(0, 1\)"),
        ((64, "0.1", 4), {}, TypeError, "center_fraction must be a number"),
        ((64, [0.08, 0.04], [4]), {}, ValueError, "center_fraction and acceleration must have one length"),
        ((64, [0.08, 1.5], [4, 8]), {}, ValueError, r"center_fraction\[1\] must lie in \(0, 1\), got 1.5"),
        ((64, [], []), {}, ValueError, "center_fraction must not be empty"),
        ((64, 0.5, 4), {}, ValueError, r"center_fraction=0.5 keeps 32 of 64 columns in the centre, but acceleration 4"),
        ((0, 0.08, 4), {}, ValueError, "num_cols must be an int >= 1, got 0"),
        ((64.0, 0.08, 4), {}, TypeError, "num_cols must be an int"),
    ],
)
def test_column_mask_errors(make, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        make(*args, **kwargs)


def test_equispaced_offset_errors():
    with pytest.raises(ValueError, match=r"offset must lie in \[0, round\(a'\)\) = \[0, 6\) for the adjusted spacing a' = 6, got 6"):
        equispaced_fraction_mask(100, 0.1, 4, offset=6)  # a' = 4 (10 − 100) / (40 − 100) = 6
    with pytest.raises(ValueError, match="offset must be an int >= 0, got -1"):
        equispaced_fraction_mask(100, 0.1, 4, offset=-1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"acceleration": 0.9}, "acceleration must be a finite number >= 1, got 0.9"),
        ({"acceleration": 1.1}, r"acceleration must be at least 1.2\d+ for this plane .*pass crop_corners=False"),
        ({"acceleration": 200}, r"acceleration must be below 16, the acceleration of the calibration box alone"),
        ({"acceleration": 4, "center_fraction": 1.0}, r"center_fraction must lie in \(0, 1\)"),
        ({"acceleration": 4, "center_fraction": (0.1, 0.1, 0.1)}, r"center_fraction must be a number or a pair"),
        ({"acceleration": 4, "tol": 0}, "tol must be a finite number > 0, got 0"),
        ({"acceleration": 4, "max_iterations": 1}, "could not reach acceleration 4 within the relative tol"),
    ],
)
def test_poisson_disc_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        poisson_disc_mask((32, 32), center_fraction=kwargs.pop("center_fraction", 0.25), **kwargs)
