"""Tests of the training-image datasets and their config factory (datasets/training.py).

Every source file is written here with the ecosystem's writer (PIL, nibabel,
pydicom, astropy, h5py, the fastMRI writer), small and with asymmetric content,
so orientation, resizing and augmentation are checked against known arrays.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from invsolve.datasets.phantoms import random_ellipse_phantoms
from invsolve.datasets.training import (
    TRAINING_SOURCES,
    EpochSampler,
    FITSCutoutDataset,
    ImageFolderDataset,
    PhantomDataset,
    VolumeSliceDataset,
    training_dataset,
)

# NIfTI volume V[i, j, k] = 100 i + 10 j + k: every voxel tells its indices.
NI, NJ, NK = 4, 5, 3
# DICOM series: 3 slices of 4 rows x 5 columns, HU = 2 * stored - 1000.
ROWS, COLUMNS, SLICES, SLOPE, INTERCEPT = 4, 5, 3, 2.0, -1000.0


def _grey(height, width, offset=0):
    """uint8 ramp whose value encodes (row, column): 10 * row + column + offset."""
    rows, columns = np.mgrid[:height, :width]
    return (10 * rows + columns + offset).astype(np.uint8)


def _dihedral(image):
    """All 16 flip/rotation results of a (C, H, W) image, as computed by flips then rot90."""
    results = []
    for flip_h in (False, True):
        for flip_w in (False, True):
            axes = [axis for axis, on in ((1, flip_h), (2, flip_w)) if on]
            flipped = image.flip(axes) if axes else image
            results.extend(torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4))
    return results


@pytest.fixture(scope="module")
def grey_folder(tmp_path_factory):
    """Three 6x6 grey PNGs, two in a subfolder, and a (1, 6, 6) .npy array."""
    from PIL import Image

    root = tmp_path_factory.mktemp("grey")
    (root / "sub").mkdir()
    Image.fromarray(_grey(6, 6)).save(root / "a.png")
    Image.fromarray(_grey(6, 6, 100)).save(root / "sub" / "b.png")
    Image.fromarray(_grey(6, 6, 50)).save(root / "sub" / "c.PNG")
    np.save(root / "d.npy", np.full((1, 6, 6), 7.5, dtype=np.float64))
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def nifti_file(tmp_path_factory):
    import nibabel

    i, j, k = np.meshgrid(np.arange(NI), np.arange(NJ), np.arange(NK), indexing="ij")
    volume = (100 * i + 10 * j + k).astype(np.float32)
    path = tmp_path_factory.mktemp("nifti") / "volume.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), path)
    return path, volume


@pytest.fixture(scope="module")
def dicom_series(tmp_path_factory):
    """A CT series whose file order differs from its InstanceNumber order; returns HU (slice, row, column)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder = tmp_path_factory.mktemp("dicom") / "series"
    folder.mkdir()
    stored = (np.arange(SLICES * ROWS * COLUMNS) * 7 % 50).reshape(SLICES, ROWS, COLUMNS).astype(np.int16)
    stored[:, 0, 0] = np.arange(SLICES) + 60  # the corner says which slice it is
    series_uid = generate_uid()
    for slice_index, name in zip(range(SLICES), ("z.dcm", "a.dcm", "m.dcm")):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        header = Dataset()
        header.file_meta = meta
        header.SOPClassUID = CTImageStorage
        header.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        header.SeriesInstanceUID = series_uid
        header.Modality = "CT"
        header.InstanceNumber = slice_index + 1
        header.ImagePositionPatient = [0.0, 0.0, float(slice_index)]
        header.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        header.PixelSpacing = [1.0, 1.0]
        header.Rows, header.Columns = ROWS, COLUMNS
        header.SamplesPerPixel = 1
        header.PhotometricInterpretation = "MONOCHROME2"
        header.BitsAllocated, header.BitsStored, header.HighBit = 16, 16, 15
        header.PixelRepresentation = 1
        header.RescaleSlope, header.RescaleIntercept = SLOPE, INTERCEPT
        header.PixelData = stored[slice_index].tobytes()
        pydicom.dcmwrite(folder / name, header, enforce_file_format=True)
    return folder, stored.astype(np.float32) * SLOPE + INTERCEPT


@pytest.fixture(scope="module")
def fits_file(tmp_path_factory):
    """A 10 x 12 FITS image in the second HDU (EXTNAME 'SCI'), one NaN at row 1, column 1."""
    from astropy.io import fits

    rows, columns = np.mgrid[:10, :12]
    data = (rows * 12 + columns).astype(np.float32)
    data[1, 1] = np.nan
    path = tmp_path_factory.mktemp("fits") / "field.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(path)
    return path, data


# -- image-folder -----------------------------------------------------------------
def test_image_folder_reads_sorted_recursive_files_as_stored(grey_folder):
    data = ImageFolderDataset(grey_folder)
    assert [file.relative_to(grey_folder).as_posix() for file in data.files] == [
        "a.png", "d.npy", "sub/b.png", "sub/c.PNG"
    ]
    assert len(data) == 4 and data.shape == (1, 6, 6)
    expected = [_grey(6, 6), np.full((6, 6), 7.5), _grey(6, 6, 100), _grey(6, 6, 50)]
    for index, array in enumerate(expected):
        item = data[index]
        assert item.dtype == torch.float32 and item.shape == (1, 6, 6)
        torch.testing.assert_close(item[0], torch.from_numpy(array.astype(np.float32)), rtol=0, atol=0)
    assert data.value_range == (0.0, float(_grey(6, 6, 100).max()))


def test_image_folder_rgb_jpeg_and_float_tiff(tmp_path):
    from PIL import Image

    rgb = np.stack([_grey(4, 6), _grey(4, 6, 100), _grey(4, 6, 200)], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.jpg", quality=95)
    palette = Image.fromarray(rgb).convert("P")
    palette.save(tmp_path / "c.png")
    data = ImageFolderDataset(tmp_path, channels=3)
    assert data.shape == (3, 4, 6)
    torch.testing.assert_close(data[0], torch.from_numpy(np.moveaxis(rgb, -1, 0).astype(np.float32)))
    assert (data[1] - data[0]).abs().mean() < 8  # JPEG is lossy but close
    torch.testing.assert_close(data[2], torch.from_numpy(np.moveaxis(np.array(palette.convert("RGB")), -1, 0)).float())

    floats = tmp_path / "floats"
    floats.mkdir()
    values = (_grey(3, 5) / 7).astype(np.float32)
    Image.fromarray(values).save(floats / "x.tif")
    torch.testing.assert_close(ImageFolderDataset(floats)[0][0], torch.from_numpy(values), rtol=0, atol=0)


def test_mixed_sizes_need_a_resize_rule(tmp_path):
    from PIL import Image

    Image.fromarray(_grey(8, 8)).save(tmp_path / "a.png")
    Image.fromarray(_grey(6, 10)).save(tmp_path / "b.png")
    options = r"2 different sizes.*size = \[H, W\].*\"area\".*\"bilinear\".*\"center-crop\""
    with pytest.raises(ValueError, match=options):
        ImageFolderDataset(tmp_path)
    with pytest.raises(ValueError, match=r"b.png is 6×10, not size = \[8, 8\]; set resize"):
        ImageFolderDataset(tmp_path, size=(8, 8))
    with pytest.raises(ValueError, match=r"center-crop\" needs images of at least size = \[8, 8\].*6×10"):
        ImageFolderDataset(tmp_path, size=(8, 8), resize="center-crop")
    with pytest.raises(ValueError, match="'trilinear' does not apply to 2D images; use 'bilinear'"):
        ImageFolderDataset(tmp_path, size=(4, 4), resize="trilinear")
    with pytest.raises(ValueError, match="resize = 'area' needs a target size"):
        ImageFolderDataset(tmp_path, resize="area")

    crop = ImageFolderDataset(tmp_path, size=(4, 4), resize="center-crop")
    torch.testing.assert_close(crop[0][0], torch.from_numpy(_grey(8, 8)[2:6, 2:6]).float())
    torch.testing.assert_close(crop[1][0], torch.from_numpy(_grey(6, 10)[1:5, 3:7]).float())
    area = ImageFolderDataset(tmp_path, size=(4, 4), resize="area")
    expected = _grey(8, 8).astype(np.float32).reshape(4, 2, 4, 2).mean(axis=(1, 3))
    torch.testing.assert_close(area[0][0], torch.from_numpy(expected))
    bilinear = ImageFolderDataset(tmp_path, size=(3, 5), resize="bilinear")
    for item in (bilinear[0], bilinear[1]):
        assert item.shape == (1, 3, 5)
        low, high = bilinear.value_range
        assert low <= float(item.min()) and float(item.max()) <= high


def test_channel_checks(grey_folder, tmp_path):
    from PIL import Image

    with pytest.raises(ValueError, match="channels = 3 was expected, but the images have 1"):
        ImageFolderDataset(grey_folder, channels=3)
    Image.fromarray(_grey(4, 4)).save(tmp_path / "grey.png")
    Image.fromarray(np.stack([_grey(4, 4)] * 3, axis=-1)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"different channel counts \[1, 3\]"):
        ImageFolderDataset(tmp_path)


# -- volumes ------------------------------------------------------------------------
def test_nifti_slices_follow_the_documented_orientation(nifti_file):
    path, volume = nifti_file
    for axis, count in ((0, NI), (1, NJ), (2, NK)):
        data = VolumeSliceDataset(path, axis=axis)
        assert len(data) == count
        for index in range(count):
            expected = np.take(volume, index, axis=axis).T
            torch.testing.assert_close(data[index][0], torch.from_numpy(np.ascontiguousarray(expected)), rtol=0, atol=0)
    # axis 2: rows along j, columns along i; the voxel value spells (i, j, k)
    assert VolumeSliceDataset(path)[1][0, 3, 2] == 100 * 2 + 10 * 3 + 1
    whole = VolumeSliceDataset(path, axis="none")
    assert whole.shape == (1, NK, NJ, NI)
    torch.testing.assert_close(whole[0][0], torch.from_numpy(np.ascontiguousarray(volume.transpose(2, 1, 0))))
    torch.testing.assert_close(whole[0][0, 1], VolumeSliceDataset(path, axis=2)[1][0])


def test_dicom_series_orientation_order_and_rescale(dicom_series):
    folder, hounsfield = dicom_series  # hounsfield[slice, row, column]
    axial = VolumeSliceDataset(folder.parent)  # the parent folder holds the series folder
    assert axial.volumes == (folder,) and len(axial) == SLICES
    for index in range(SLICES):
        torch.testing.assert_close(axial[index][0], torch.from_numpy(hounsfield[index]), rtol=0, atol=0)
    assert [float(axial[index][0, 0, 0]) for index in range(SLICES)] == [SLOPE * (60 + s) + INTERCEPT for s in range(3)]
    by_column = VolumeSliceDataset(folder, axis=0)  # V[column].T: rows along the slices, columns along the rows
    for column in range(COLUMNS):
        torch.testing.assert_close(by_column[column][0], torch.from_numpy(hounsfield[:, :, column]), rtol=0, atol=0)
    by_row = VolumeSliceDataset(folder, axis=1)
    for row in range(ROWS):
        torch.testing.assert_close(by_row[row][0], torch.from_numpy(hounsfield[:, row, :]), rtol=0, atol=0)


def test_window_slice_range_and_empty_slices(tmp_path):
    import nibabel

    volume = np.full((6, 6, 8), -1000.0, dtype=np.float32)  # air
    volume[1:5, 1:5, 2:6] = 3000.0  # a bright block in slices 2..5
    volume[2, 2, 6] = 50.0  # one soft-tissue voxel in slice 6
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / "ct.nii")
    data = VolumeSliceDataset(tmp_path, window=(-1000, 1000), empty_threshold=-900)
    assert len(data) == 5 and data.value_range == (-1000.0, 1000.0)
    assert float(data[0].max()) == 1000.0 and float(data[4].max()) == 50.0
    assert len(VolumeSliceDataset(tmp_path, empty_threshold=-900, min_foreground=0.1)) == 4
    stepped = VolumeSliceDataset(tmp_path, slices=(1, -1), step=2)
    assert len(stepped) == 3  # range(1, 8 - 1, 2): slices 1, 3, 5
    torch.testing.assert_close(stepped[1][0], torch.from_numpy(np.ascontiguousarray(volume[:, :, 3].T)))
    assert stepped.value_range == (-1000.0, 3000.0)
    with pytest.raises(ValueError, match="no slices selected"):
        VolumeSliceDataset(tmp_path, slices=(0, 2), empty_threshold=0)
    with pytest.raises(ValueError, match="do not apply with axis = \"none\""):
        VolumeSliceDataset(tmp_path, axis="none", step=2)


# -- fastMRI, FITS, HDF5, phantoms ----------------------------------------------------
def test_fastmri_targets(tmp_path):
    from invsolve.datasets.io.fastmri import write_fastmri_volume

    generator = torch.Generator().manual_seed(1)
    targets = [torch.rand(n, 8, 8, generator=generator) * scale for n, scale in ((2, 3.0), (3, 5.0))]
    for number, target in enumerate(targets):
        kspace = torch.randn(target.shape[0], 2, 12, 10, dtype=torch.complex64, generator=generator)
        write_fastmri_volume(tmp_path / f"file{number}.h5", kspace, target=target)
    data = training_dataset({"source": "fastmri", "path": str(tmp_path), "size": [4, 4], "resize": "area"})
    assert len(data) == 5 and data.shape == (1, 4, 4)
    torch.testing.assert_close(data[3], torch.nn.functional.avg_pool2d(targets[1][1][None], 2))
    assert data.value_range == (0.0, float(targets[1].max()))

    write_fastmri_volume(tmp_path / "test.h5", torch.zeros(1, 2, 12, 10, dtype=torch.complex64))
    with pytest.raises(ValueError, match="test.h5: has no target dataset"):
        training_dataset({"source": "fastmri", "path": str(tmp_path)})


def test_fits_cutouts_and_nan_rules(fits_file, tmp_path):
    from astropy.io import fits

    path, data = fits_file
    with pytest.raises(ValueError, match="field.fits: the image holds 1 NaN"):
        FITSCutoutDataset(path)
    fixed = FITSCutoutDataset(path, hdu="SCI", cutout=(3, 4), centre=(6, 7))
    torch.testing.assert_close(fixed[0][0], torch.from_numpy(data[5:8, 5:9]), rtol=0, atol=0)
    assert fixed.value_range == (float(data[5, 5]), float(data[7, 8]))
    replaced = FITSCutoutDataset(path, nan=-1.0)
    assert replaced.shape == (1, 10, 12) and float(replaced[0][0, 1, 1]) == -1.0
    assert replaced.value_range == (-1.0, float(np.nanmax(data)))
    with pytest.raises(ValueError, match=r"every cutout .* holds NaN"):
        FITSCutoutDataset(path, cutout=(3, 3), centre=(1, 1), nan="skip")
    fits.PrimaryHDU(np.nan_to_num(data, nan=5.0)).writeto(tmp_path / "clean.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(tmp_path / "holed.fit")
    skipping = FITSCutoutDataset(tmp_path, cutout=(3, 3), centre=(1, 1), nan="skip")
    assert len(skipping) == 1 and skipping.describe()["num_files"] == 1
    torch.testing.assert_close(skipping[0][0], torch.from_numpy(np.nan_to_num(data, nan=5.0)[0:3, 0:3]))
    with pytest.raises(ValueError, match=r"outside the 10×12 image"):
        FITSCutoutDataset(path, cutout=(3, 3), centre=(0, 5))
    with pytest.raises(ValueError, match="has no HDU 'NOPE'"):
        FITSCutoutDataset(path, hdu="NOPE")

    crops = FITSCutoutDataset(path, cutout=(4, 4), random_crops=5, nan="skip", seed=3)
    assert len(crops) == 5
    first = [crops.item(index, 0) for index in range(5)]
    assert all(torch.isfinite(crop).all() for crop in first)
    assert all(torch.equal(crop, crops.item(index, 0)) for index, crop in enumerate(first))
    assert any(not torch.equal(crop, crops.item(index, 1)) for index, crop in enumerate(first))
    windows = {data[r : r + 4, c : c + 4].tobytes() for r in range(7) for c in range(9)}
    assert all(crop[0].numpy().tobytes() in windows for crop in first)  # each is a real 4x4 window
    with pytest.raises(ValueError, match="cache = true cannot be used with the random crops"):
        FITSCutoutDataset(path, cutout=(4, 4), random_crops=2, nan="skip", cache=True)


def test_hdf5_layouts(tmp_path):
    import h5py

    images = np.arange(3 * 4 * 4 * 2, dtype=np.int16).reshape(3, 4, 4, 2)
    with h5py.File(tmp_path / "data.h5", "w") as file:
        file.create_dataset("train/x", data=images)
        file.create_dataset("grey", data=images[..., 0].astype(np.float64))
    channels_last = training_dataset({"source": "hdf5", "path": str(tmp_path / "data.h5"), "key": "train/x",
                                      "layout": "NHWC"})
    assert channels_last.shape == (2, 4, 4)
    torch.testing.assert_close(channels_last[2], torch.from_numpy(np.moveaxis(images[2], -1, 0).astype(np.float32)))
    assert channels_last.value_range == (0.0, float(images.max()))
    grey = training_dataset({"source": "hdf5", "path": str(tmp_path / "data.h5"), "key": "grey"})
    assert grey.shape == (1, 4, 4) and len(grey) == 3
    depth = training_dataset({"source": "hdf5", "path": str(tmp_path / "data.h5"), "key": "train/x", "layout": "NDHW"})
    assert depth.shape == (1, 4, 4, 2)
    listed = r"key = 'missing' is not a dataset in the file; its datasets are \['grey', 'train/x'\]"
    with pytest.raises(ValueError, match=listed):
        training_dataset({"source": "hdf5", "path": str(tmp_path / "data.h5"), "key": "missing"})


def test_phantoms_are_seeded_per_index():
    data = PhantomDataset(length=1000, size=(16, 16), seed=5)
    for index in (0, 999):
        expected = random_ellipse_phantoms(1, (16, 16), seed=5 + index)[0]
        torch.testing.assert_close(data[index], expected, rtol=0, atol=0)
    assert data.value_range == pytest.approx((0.0, 1.15))
    volumes = training_dataset({"source": "phantoms", "length": 2, "size": [4, 8, 8], "flip": True, "rot90": True})
    assert volumes[1].shape == (1, 4, 8, 8)


# -- augmentation and loading ---------------------------------------------------------
def test_augmentations_are_pure_functions_of_index_epoch_and_seed(grey_folder):
    data = ImageFolderDataset(grey_folder, flip=True, rot90=True, seed=11)
    plain = ImageFolderDataset(grey_folder)
    torch.manual_seed(123)
    first = [data.item(index, 4) for index in range(len(data))]
    torch.manual_seed(456)  # global random state must not matter
    assert all(torch.equal(item, data.item(index, 4)) for index, item in enumerate(first))
    data.set_epoch(4)
    assert all(torch.equal(item, data[index]) for index, item in enumerate(first))
    assert all(torch.equal(item, data[(index, 4)]) for index, item in enumerate(first))
    for index, item in enumerate(first):
        assert any(torch.equal(item, candidate) for candidate in _dihedral(plain[index]))
    other_epochs = [[data.item(index, epoch) for index in (0, 2, 3)] for epoch in range(5)]
    assert len({tuple(item.numpy().tobytes() for item in items) for items in other_epochs}) > 1
    reseeded = ImageFolderDataset(grey_folder, flip=True, rot90=True, seed=12)
    assert any(not torch.equal(reseeded.item(i, e), data.item(i, e)) for i in (0, 2, 3) for e in range(4))
    with pytest.raises(ValueError, match=r"rot90 = true needs square items \(H == W\), got size 3×5"):
        ImageFolderDataset(grey_folder, size=(3, 5), resize="area", rot90=True)


def test_zoom_shrinks_each_item_onto_a_background_canvas(tmp_path):
    folder = tmp_path / "zoom"
    folder.mkdir()
    ramp = np.arange(64, dtype=np.float32).reshape(1, 8, 8) / 63 * 4 + 1  # values 1..5, no background
    np.save(folder / "ramp.npy", ramp)
    data = ImageFolderDataset(folder, zoom=(0.5, 0.5), value_range=(-1.0, 6.0), seed=3)
    shrunk = torch.nn.functional.interpolate(torch.from_numpy(ramp)[None], size=(4, 4), mode="area")[0]
    positions = set()
    for epoch in range(12):
        item = data.item(0, epoch)
        assert item.shape == (1, 8, 8)
        inside = (item != -1.0).nonzero()[:, 1:]
        top, left = inside.min(0).values.tolist()
        assert inside.max(0).values.tolist() == [top + 3, left + 3] and len(inside) == 16  # a 4×4 window
        torch.testing.assert_close(item[:, top:top + 4, left:left + 4], shrunk, rtol=0, atol=0)
        assert torch.equal(item, data.item(0, epoch))  # a pure function of (index, epoch, seed)
        positions.add((top, left))
    assert len(positions) > 3  # the position is drawn, not fixed
    scales = ImageFolderDataset(folder, zoom=(0.25, 1.0), value_range=(-1.0, 6.0), seed=3)
    sizes = {int((scales.item(0, epoch) != -1.0).sum()) for epoch in range(30)}
    assert {4, 64} & sizes and len(sizes) > 3 and sizes <= {4, 9, 16, 25, 36, 49, 64}
    unchanged = ImageFolderDataset(folder, zoom=(1.0, 1.0), value_range=(-1.0, 6.0))
    assert torch.equal(unchanged.item(0, 5), torch.from_numpy(ramp))
    assert data.describe()["config"]["zoom"] == [0.5, 0.5]
    assert "zoom" not in ImageFolderDataset(folder).describe()["config"]
    for bad in ([0.0, 1.0], [0.5, 1.5], [0.9, 0.5], [0.5]):
        with pytest.raises(ValueError, match=r"zoom must be a pair \(low, high\) with 0"):
            ImageFolderDataset(folder, zoom=bad)
    with pytest.raises(ValueError, match="unknown key 'zoom' for source 'phantoms'"):
        training_dataset({"source": "phantoms", "length": 2, "size": [8, 8], "zoom": [0.5, 1.0]})


def test_zoom_of_volume_slices_from_a_config(nifti_file):
    config = {"source": "volumes", "path": str(nifti_file[0]), "axis": 0, "window": [0, 300], "zoom": [0.5, 0.75]}
    data = training_dataset(config)
    plain = training_dataset({key: value for key, value in config.items() if key != "zoom"})
    for index in range(min(3, len(data))):
        item, full = data.item(index, 0), plain.item(index, 0)
        assert item.shape == full.shape
        assert 0.0 <= float(item.min()) and float(item.max()) <= float(full.max())
        assert int((item == 0.0).sum()) >= item[0].numel() * (1 - 0.75 ** 2) - item.shape[-1]
    assert training_dataset(data.describe()["config"]).item(1, 2).equal(data.item(1, 2))


def test_cache_gives_the_same_items(grey_folder):
    cached = ImageFolderDataset(grey_folder, flip=True, seed=2, cache=True)
    direct = ImageFolderDataset(grey_folder, flip=True, seed=2)
    for index in range(len(direct)):
        item = cached.item(index, 1)
        assert torch.equal(item, direct.item(index, 1))
        item.add_(1000)  # the cache must not be changed through an item
        assert torch.equal(cached.item(index, 1), direct.item(index, 1))
    assert cached.value_range == direct.value_range


def test_dataloader_with_two_workers_and_epoch_sampler(grey_folder):
    data = ImageFolderDataset(grey_folder, flip=True, rot90=True, seed=1)
    sampler = EpochSampler(data, seed=9)
    loader = DataLoader(data, batch_size=2, sampler=sampler, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        order = sampler.order(epoch).tolist()
        batches = torch.cat(list(loader))
        assert batches.shape == (4, 1, 6, 6)
        expected = torch.stack([data.item(index, epoch) for index in order])
        assert torch.equal(batches, expected)
    assert sorted(sampler.order(3).tolist()) == [0, 1, 2, 3]
    assert torch.equal(sampler.order(3), EpochSampler(4, seed=9).order(3))
    sampler.set_epoch(3, start=2)
    assert list(sampler) == [(index, 3) for index in sampler.order(3)[2:].tolist()]
    plain = DataLoader(ImageFolderDataset(grey_folder, size=(3, 3), resize="area"), batch_size=4, num_workers=2)
    assert next(iter(plain)).shape == (4, 1, 3, 3)


# -- config and records ---------------------------------------------------------------
def test_config_errors(grey_folder, tmp_path):
    folder = str(grey_folder)
    with pytest.raises(ValueError, match=r"unknown key 'sizes' for source 'image-folder'; allowed keys: source, cache, "
                                          r"channels, flip, path, resize, rot90, seed, size, value_range, zoom"):
        training_dataset({"source": "image-folder", "path": folder, "sizes": [8, 8]})
    with pytest.raises(ValueError, match=r"config has no 'source' key; expected source = one of 'image-folder'"):
        training_dataset({"path": folder})
    with pytest.raises(ValueError, match="config has source = 'pngs'"):
        training_dataset({"source": "pngs", "path": folder})
    with pytest.raises(ValueError, match=r"source 'hdf5' needs the key\(s\) 'path', 'key'"):
        training_dataset({"source": "hdf5"})
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(f"path: {missing} does not exist")):
        training_dataset({"source": "volumes", "path": str(missing)})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        training_dataset({"source": "image-folder", "path": "nowhere"}, root=tmp_path)
    with pytest.raises(ValueError, match="holds no .png"):
        training_dataset({"source": "image-folder", "path": str(tmp_path)})
    with pytest.raises(TypeError, match="flip must be true or false, got 'yes'"):
        training_dataset({"source": "image-folder", "path": folder, "flip": "yes"})
    rules = "resize must be one of 'area', 'bilinear', 'trilinear', 'center-crop', got 'cubic'"
    with pytest.raises(ValueError, match=rules):
        training_dataset({"source": "image-folder", "path": folder, "size": [4, 4], "resize": "cubic"})
    with pytest.raises(ValueError, match=r"value_range must be a pair \(low, high\) with low < high"):
        training_dataset({"source": "image-folder", "path": folder, "value_range": [1, 1]})
    with pytest.raises(ValueError, match=r"axis must be 0, 1, 2 or \"none\""):
        training_dataset({"source": "volumes", "path": folder, "axis": 3})
    with pytest.raises(ValueError, match="unknown key 'resize' for source 'phantoms'"):
        training_dataset({"source": "phantoms", "length": 4, "size": [8, 8], "resize": "area"})
    with pytest.raises(TypeError, match="config must be a mapping"):
        training_dataset([("source", "phantoms")])
    assert set(TRAINING_SOURCES) == {"image-folder", "volumes", "fastmri", "fits", "hdf5", "phantoms", "ct-synthetic", "ultrasound-rf", "ultrasound-bmode", "galaxy-world", "galaxy-catalog"}


def test_describe_is_json_and_rebuilds_the_dataset(grey_folder, nifti_file, dicom_series, fits_file):
    configs = [
        {"source": "image-folder", "path": grey_folder.name, "size": [4, 4], "resize": "area", "flip": True},
        {"source": "volumes", "path": str(nifti_file[0]), "axis": 0, "window": [0, 300], "seed": 4, "rot90": False},
        {"source": "volumes", "path": str(dicom_series[0]), "axis": "none"},
        {"source": "fits", "path": str(fits_file[0]), "cutout": [4, 4], "random_crops": 3, "nan": "skip"},
        {"source": "phantoms", "length": 3, "size": [8, 8], "n_ellipses": [2, 4], "rot90": True},
    ]
    for config in configs:
        data = training_dataset(config, root=grey_folder.parent)
        record = json.loads(json.dumps(data.describe()))
        assert record["source"] == config["source"] and record["num_items"] == len(data)
        assert record["shape"] == list(data.shape) and record["value_range"] == list(data.value_range)
        rebuilt = training_dataset(record["config"])
        assert rebuilt.describe() == record
        assert all(torch.equal(rebuilt.item(i, 2), data.item(i, 2)) for i in range(len(data)))
    record = training_dataset(configs[0], root=grey_folder.parent).describe()
    assert record["num_files"] == 4 and len(record["files_sha256"]) == 64
    assert record["config"]["path"] == str(grey_folder)


def test_import_does_not_load_readers(tmp_path):
    code = (
        "import sys, invsolve.datasets.training;"
        "heavy = ('monai', 'h5py', 'astropy', 'nibabel', 'pydicom', 'PIL', 'scipy');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert completed.stdout.strip() == ""
