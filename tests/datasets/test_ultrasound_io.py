"""Ultrasound file I/O (issue 13, point 5): B-mode DICOM cines in, HDF5 results with provenance out."""

from __future__ import annotations

import h5py
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

from invsolve.datasets.io.ultrasound import read_bmode_dicom, write_ultrasound_hdf5


def test_pydicom_s_echo_cine_reads_as_grey_frames():
    cine = read_bmode_dicom(get_testdata_file("examples_ybr_color.dcm"))
    assert cine.frames.shape == (30, 240, 320) and cine.frames.dtype == torch.float64
    assert 0.0 <= float(cine.frames.min()) and float(cine.frames.max()) <= 1.0 and float(cine.frames.std()) > 0.01
    assert cine.frame_time_ms == pytest.approx(33.333, abs=1e-3)
    # its ultrasound region describes a 640×480 acquisition, not these 320×240 pixels: no spacing is claimed
    assert cine.spacing_mm is None
    # the luminance as stored equals BT.601's luma of the decoded RGB to rounding
    dataset = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    luma = (dataset.pixel_array[0].astype(np.float64) @ np.array([0.299, 0.587, 0.114])) / 255
    assert np.abs(cine.frames[0].numpy() - luma).mean() < 0.01


def _write_us_dicom(path, frames: np.ndarray, *, region: tuple[int, int, int, int] | None, pixels: bool = True) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.Modality, dataset.SOPClassUID = "US", UltrasoundMultiFrameImageStorage
    dataset.SOPInstanceUID, dataset.SeriesInstanceUID = meta.MediaStorageSOPInstanceUID, generate_uid()
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = frames.shape[1], frames.shape[2], frames.shape[0]
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    dataset.FrameTime = "20"
    if region is not None:
        item = pydicom.Dataset()
        item.RegionLocationMinX0, item.RegionLocationMinY0, item.RegionLocationMaxX1, item.RegionLocationMaxY1 = region
        item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
        item.PhysicalDeltaX, item.PhysicalDeltaY = 0.02, 0.03
        dataset.SequenceOfUltrasoundRegions = [item]
    if pixels:
        dataset.PixelData = frames.astype(np.uint8).tobytes()
    dataset.save_as(path, enforce_file_format=True)


def test_a_monochrome_cine_with_its_region_spacing(tmp_path):
    frames = np.stack([np.full((6, 10), 51 * k, dtype=np.uint8) for k in range(3)])
    _write_us_dicom(tmp_path / "cine.dcm", frames, region=(1, 1, 8, 5))
    cine = read_bmode_dicom(tmp_path / "cine.dcm")
    assert cine.frames.shape == (3, 6, 10)
    assert torch.allclose(cine.frames[:, 0, 0], torch.tensor([0.0, 0.2, 0.4], dtype=torch.float64))
    assert cine.spacing_mm == pytest.approx((0.3, 0.2)) and cine.frame_time_ms == 20.0
    _write_us_dicom(tmp_path / "outside.dcm", frames, region=(1, 1, 20, 5))
    assert read_bmode_dicom(tmp_path / "outside.dcm").spacing_mm is None


def test_a_dicom_without_pixel_data_is_refused(tmp_path):
    _write_us_dicom(tmp_path / "empty.dcm", np.zeros((2, 4, 4), dtype=np.uint8), region=None, pixels=False)
    with pytest.raises(ValueError, match="pixel data"):
        read_bmode_dicom(tmp_path / "empty.dcm", "--input")
    with pytest.raises(FileNotFoundError):
        read_bmode_dicom(tmp_path / "missing.dcm")


def test_results_are_written_atomically_with_provenance(tmp_path, monkeypatch):
    path = tmp_path / "out" / "dehazed.h5"
    written = write_ultrasound_hdf5(path, {"tissue": torch.ones(2, 3), "haze": np.zeros((2, 3))}, {"gamma": 0.2, "sampler": "joint-dehaze"})
    assert written == path
    with h5py.File(path) as file:
        assert file["tissue"].shape == (2, 3) and float(file["haze"][()].sum()) == 0.0
        assert file.attrs["gamma"] == 0.2 and file.attrs["sampler"] == "joint-dehaze"
        assert str(file.attrs["software"]).startswith("invsolve ") and "created_utc" in file.attrs
    with pytest.raises(ValueError, match="array names must be non-empty strings without '/'"):
        write_ultrasound_hdf5(tmp_path / "bad.h5", {"a/b": np.zeros(2)})
    with pytest.raises(ValueError, match="at least one array"):
        write_ultrasound_hdf5(tmp_path / "none.h5", {})
    # a failure while writing leaves nothing behind
    with pytest.raises(TypeError):
        write_ultrasound_hdf5(tmp_path / "broken.h5", {"x": np.zeros(2)}, {"bad": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
