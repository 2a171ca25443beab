"""Damaged and misplaced files are refused when a dataset or a measurement reader is built.

Each test writes its files with the format's own writer (pydicom's bundled
``MR_small.dcm``/``CT_small.dcm``, nibabel, h5py, astropy, numpy, PIL), damages
them (truncation mostly) and checks that the error comes from the constructor
(or ``read_array``), names the file and says what to do.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from invsolve.datasets import ct_small_slice
from invsolve.datasets.io import write_fastmri_volume
from invsolve.datasets.io.checks import COPY_AGAIN, dicom_image, dicom_series, nifti_shape, open_fits
from invsolve.datasets.training import (
    FastMRITargetDataset,
    FITSCutoutDataset,
    HDF5ArrayDataset,
    ImageFolderDataset,
    VolumeSliceDataset,
)
from invsolve.measurement_files import read_array

FIX = re.escape(COPY_AGAIN)


def _truncate(path, size):
    path.write_bytes(path.read_bytes()[:size])


def _raises(match, path):
    """``pytest.raises(ValueError)`` whose message must name ``path`` and match ``match``."""
    return pytest.raises(ValueError, match=f"{re.escape(str(path))}.*{match}")


def _dicom_copy(source, target, *, instance, series=None, description=None, offset=0):
    """A copy of a pydicom test file with a new SOP instance, InstanceNumber and optionally series."""
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file(source))
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    dataset.InstanceNumber = instance
    if series is not None:
        dataset.SeriesInstanceUID = series
    if description is not None:
        dataset.SeriesDescription = description
    if offset:
        dataset.PixelData = (dataset.pixel_array + offset).astype(dataset.pixel_array.dtype).tobytes()
    dataset.save_as(target, enforce_file_format=True)
    return target


@pytest.fixture
def mr_series(tmp_path):
    """A folder with three 64×64 MR slices of one series, file order unlike InstanceNumber order."""
    folder = tmp_path / "series"
    folder.mkdir()
    for number, name in zip((3, 1, 2), ("a.dcm", "b.dcm", "c.dcm")):
        _dicom_copy("MR_small.dcm", folder / name, instance=number, offset=10 * number)
    return folder


# -- DICOM --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cut", "match"),
    [
        (-1000, r"PixelData declares 8192 bytes from byte \d+, but the file ends \d+ bytes short"),
        (0.5, "PixelData declares 8192 bytes"),
        (1000, "holds no pixel data; if it is an image, the file ends before its pixels"),
        (100, "not a DICOM file"),
    ],
)
def test_truncated_dicom_is_refused_when_the_dataset_is_built(mr_series, cut, match):
    damaged = mr_series / "c.dcm"
    size = damaged.stat().st_size
    _truncate(damaged, int(size * cut) if isinstance(cut, float) else cut % size)
    with _raises(match, damaged):
        VolumeSliceDataset(mr_series)
    with _raises(match, damaged):
        VolumeSliceDataset(mr_series.parent, axis="none")  # the recursive search checks it too
    with pytest.raises(ValueError, match=f"--input {re.escape(str(damaged))}: .*{match}"):
        read_array(mr_series, "--input")


def test_pixel_data_shorter_than_the_image_size(tmp_path):
    import pydicom

    path = _dicom_copy("MR_small.dcm", tmp_path / "short.dcm", instance=1)
    dataset = pydicom.dcmread(path)
    dataset.PixelData = dataset.PixelData[:-128]  # a complete file whose header promises more pixels
    dataset.save_as(path)
    expected = "PixelData holds 8064 bytes, but Rows × Columns × SamplesPerPixel × NumberOfFrames × BitsAllocated"
    with _raises(f"{expected} / 8 = 64 × 64 × 1 × 1 × 16 / 8 needs 8192; {FIX}", path):
        VolumeSliceDataset(path)


def test_a_single_dicom_file_is_a_volume_of_one_slice():
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    data = VolumeSliceDataset(path)
    assert len(data) == 1 and data.shape == (1, 128, 128) and data.volumes == (Path(path),)
    torch.testing.assert_close(data[0], ct_small_slice(), rtol=0, atol=0)
    assert VolumeSliceDataset(path, axis=0).shape == (1, 1, 128)  # the one slice seen from the side
    measured = read_array(path, "--input")
    torch.testing.assert_close(measured.data.float(), ct_small_slice()[0], rtol=0, atol=0)
    assert measured.spacing == (0.661468, 0.661468)


def test_a_series_folder_is_ordered_by_instance_number(mr_series):
    volume = VolumeSliceDataset(mr_series, axis="none")[0][0]
    measured = read_array(mr_series, "--input").data
    assert volume.shape == measured.shape == (3, 64, 64)
    torch.testing.assert_close(volume, measured.float(), rtol=0, atol=0)
    assert [d.path.name for d in dicom_series(mr_series)] == ["b.dcm", "c.dcm", "a.dcm"]
    assert torch.equal(measured[1] - measured[0], torch.full((64, 64), 10.0, dtype=measured.dtype))


def test_a_folder_of_several_series_is_refused_naming_them(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    for number in (1, 2):
        _dicom_copy("MR_small.dcm", folder / f"t1_{number}.dcm", instance=number, series="1.2.826.0.1.1",
                    description="T1 AX")
    _dicom_copy("MR_small.dcm", folder / "t2_1.dcm", instance=1, series="1.2.826.0.1.2", description="T2 COR")
    listing = (
        r"holds 2 DICOM series \(SeriesInstanceUID 1\.2\.826\.0\.1\.1 'T1 AX' \(SeriesNumber \d+\): 2 files, e\.g\. "
        r"t1_1\.dcm; SeriesInstanceUID 1\.2\.826\.0\.1\.2 'T2 COR' \(SeriesNumber \d+\): 1 file, e\.g\. t2_1\.dcm\), "
        r"but a series folder must hold one; move each series' files into a folder of its own and pass that folder "
        r"\(or pass one \.dcm file\)"
    )
    with _raises(listing, folder):
        VolumeSliceDataset(folder)
    with _raises(listing, folder):
        VolumeSliceDataset(tmp_path)
    with _raises(listing, folder):
        read_array(folder, "--reference")
    # the fix works: one series per folder, the parent reads both
    (tmp_path / "export" / "t2").mkdir()
    shutil.move(folder / "t2_1.dcm", folder / "t2" / "t2_1.dcm")
    assert VolumeSliceDataset(tmp_path).volumes == (folder, folder / "t2")
    assert len(VolumeSliceDataset(tmp_path)) == 3


def test_repeated_or_missing_instance_numbers(tmp_path):
    _dicom_copy("MR_small.dcm", tmp_path / "a.dcm", instance=4)
    _dicom_copy("MR_small.dcm", tmp_path / "b.dcm", instance=4)
    with pytest.raises(ValueError, match="b.dcm and .*a.dcm have the same InstanceNumber 4"):
        VolumeSliceDataset(tmp_path)
    _dicom_copy("MR_small.dcm", tmp_path / "b.dcm", instance=None)
    with _raises("has no InstanceNumber, which orders the slices", tmp_path / "b.dcm"):
        read_array(tmp_path)


def test_a_non_image_dicom_and_wrong_files_say_what_to_pass(tmp_path):
    from pydicom.data import get_testdata_file

    plan = tmp_path / "plan.dcm"
    shutil.copy(get_testdata_file("rtplan.dcm"), plan)
    with _raises("holds no pixel data.*if it is not an image .* move it out of the folder", plan):
        dicom_image(plan)
    text = tmp_path / "notes.txt"
    text.write_text("not a volume")
    with pytest.raises(ValueError, match="neither a NIfTI file .* nor a DICOM file .*; pass one of those, a folder"):
        VolumeSliceDataset(text)


# -- NIfTI --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["volume.nii", "volume.nii.gz"])
def test_truncated_nifti_is_refused_when_the_dataset_is_built(tmp_path, name):
    import nibabel

    path = tmp_path / name
    nibabel.save(nibabel.Nifti1Image(np.arange(8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10), np.eye(4)), path)
    assert nifti_shape(path) == (8, 9, 10)
    _truncate(path, path.stat().st_size - 40)
    match = "gzip stream ends before its end marker" if name.endswith(".gz") else (
        r"holds \d+ bytes, but its header declares 720 voxels \(8×9×10\) of float32 from byte 352, 3232 bytes"
    )
    with _raises(f"{match}.*{FIX}", path):
        VolumeSliceDataset(path)
    with _raises(match, path):
        read_array(path, "--input")
    _truncate(path, 200)  # inside the header
    with _raises("not a NIfTI file nibabel can read", path):
        VolumeSliceDataset(tmp_path)


def test_complete_gzip_streams_of_several_members_are_accepted(tmp_path):
    """A trailer length unlike the header's (two gzip members) is checked by decompressing, not refused."""
    import nibabel

    volume = np.random.default_rng(0).standard_normal((16, 16, 16)).astype(np.float32)  # 16 KiB, incompressible
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / "plain.nii")
    raw = (tmp_path / "plain.nii").read_bytes()
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(raw[:400]) + gzip.compress(raw[400:]))  # the header in the first
    data = VolumeSliceDataset(path, axis="none")
    torch.testing.assert_close(data[0][0], torch.from_numpy(volume.transpose(2, 1, 0).copy()), rtol=0, atol=0)
    _truncate(path, path.stat().st_size - 10)
    with _raises("gzip stream ends before its end marker", path):
        VolumeSliceDataset(path)


def test_a_file_damaged_after_the_build_names_itself_when_read(mr_series):
    data = VolumeSliceDataset(mr_series)
    damaged = mr_series / "a.dcm"
    _truncate(damaged, damaged.stat().st_size - 2000)
    with pytest.raises(ValueError, match=rf"{re.escape(str(mr_series))}: reading it failed \(.*\); {FIX}"):
        data[0]


# -- HDF5 ---------------------------------------------------------------------------
def test_truncated_hdf5_is_refused_when_the_dataset_is_built(tmp_path):
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("images", data=np.zeros((4, 8, 8), dtype=np.float32))
    assert len(HDF5ArrayDataset(path, key="images")) == 4
    _truncate(path, path.stat().st_size - 100)
    match = rf"not a readable HDF5 file \(OSError: .*truncated file.*\); it is truncated: {FIX}"
    with _raises(match, path):
        HDF5ArrayDataset(path, key="images")
    with _raises(match, path):
        read_array(path, "--reference")


def test_truncated_fastmri_file_is_refused_when_the_dataset_is_built(tmp_path):
    path = write_fastmri_volume(
        tmp_path / "knee.h5", torch.ones(2, 2, 8, 8, dtype=torch.complex64), target=torch.rand(2, 8, 8)
    )
    assert len(FastMRITargetDataset(tmp_path)) == 2
    _truncate(path, path.stat().st_size // 2)
    with _raises("not a readable HDF5 file .*it is truncated", path):
        FastMRITargetDataset(tmp_path)
    with _raises("not a readable HDF5 file .*it is truncated", path):
        read_array(path, "--input")


def test_an_hdf5_filter_h5py_lacks_is_named(tmp_path, monkeypatch):
    path = tmp_path / "packed.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("images", data=np.zeros((2, 8, 8), dtype=np.float32), compression="gzip")
    available = h5py.h5z.filter_avail
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: code != h5py.h5z.FILTER_DEFLATE and available(code))
    match = r"images: is compressed with the HDF5 filter deflate \(id 1\), which this h5py cannot decode; pip install"
    with _raises(match, path):
        HDF5ArrayDataset(path, key="images")
    with _raises(match, path):
        read_array(path)


# -- FITS ---------------------------------------------------------------------------
@pytest.fixture
def fits_file(tmp_path):
    from astropy.io import fits

    path = tmp_path / "field.fits"
    data = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(path)
    return path, data


# astropy warns about the damage it sees too
@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning", "ignore:File may have been truncated")
@pytest.mark.parametrize(
    ("cut", "match"),
    [
        (11520, r"HDU 1 \(SCI\) declares 8000 data bytes .* from byte 5760, but the file ends at byte 11520"),
        (5000, "an extension header begins at byte 2880 but is cut short"),
        (2000, "astropy cannot open it as FITS"),
    ],
)
def test_truncated_fits_is_refused_when_the_dataset_is_built(fits_file, cut, match):
    path, _ = fits_file
    _truncate(path, cut)
    with _raises(f"{match}.*{FIX}", path):
        FITSCutoutDataset(path)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_fits_without_its_last_padding_is_read_and_gzip_streams_are_checked(fits_file, tmp_path):
    path, data = fits_file
    _truncate(path, path.stat().st_size - 100)  # the data is complete, only the block padding is missing
    torch.testing.assert_close(FITSCutoutDataset(path)[0][0], torch.from_numpy(data))
    packed = tmp_path / "field.fits.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with open_fits(packed) as hdus:
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "SCI"]
    _truncate(packed, packed.stat().st_size // 2)
    with _raises("gzip stream ends before its end marker", packed):
        FITSCutoutDataset(packed)


# -- .npy and images ----------------------------------------------------------------
def test_truncated_npy_and_png_are_refused_when_the_dataset_is_built(tmp_path):
    from PIL import Image

    array = tmp_path / "a.npy"
    np.save(array, np.zeros((8, 8), dtype=np.float32))
    _truncate(array, array.stat().st_size - 16)
    match = r"header declares a float32 array of shape \(8, 8\), 384 bytes"
    with _raises(match, array):
        ImageFolderDataset(tmp_path)
    with _raises(match, array):
        read_array(array, "--input")
    array.unlink()
    picture = tmp_path / "b.png"
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(picture)
    _truncate(picture, picture.stat().st_size - 20)
    with _raises(f"a damaged image file .*; {FIX}", picture):
        ImageFolderDataset(tmp_path)


def test_a_truncated_jpeg_names_itself_when_read(tmp_path):
    from PIL import Image

    picture = tmp_path / "c.jpg"
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(picture)
    _truncate(picture, picture.stat().st_size - 200)  # JPEG data is decoded only when an item is read
    data = ImageFolderDataset(tmp_path)
    with _raises(f"reading it failed .*image file is truncated.*; {FIX}", picture):
        data[0]
