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

from invsolve.datasets.io.ultrasound import read_bmode_dicom, read_ultrasound_hdf5, write_ultrasound_hdf5


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


def _write_picmus(path, transmits=3, elements=4, samples=10, iq=True, drop=None):
    generator = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        group = file.create_group("US/US_DATASET0000")
        fields = {
            "data/real": generator.standard_normal((transmits, elements, samples)),
            "data/imag": generator.standard_normal((transmits, elements, samples)) if iq else np.zeros((transmits, elements, samples)),
            "angles": np.linspace(-0.1, 0.1, transmits),
            "probe_geometry": np.stack([np.linspace(-1e-3, 1e-3, elements), np.zeros(elements), np.zeros(elements)]),
            "sampling_frequency": np.array([20.8e6]),
            "sound_speed": np.array([1540.0]),
            "modulation_frequency": np.array([5.208e6]),
            "initial_time": np.array([1e-6]),
        }
        for key, value in fields.items():
            if key != drop:
                group.create_dataset(key, data=value)
    return fields


def test_a_picmus_file_reads_as_channel_data_with_its_parameters(tmp_path):
    fields = _write_picmus(tmp_path / "picmus.hdf5")
    acquisition = read_ultrasound_hdf5(tmp_path / "picmus.hdf5")
    assert acquisition.layout == "picmus" and acquisition.channel_data.shape == (1, 3, 10, 4)  # (frames, tx, ax, el)
    assert acquisition.channel_data.is_complex()
    expected = fields["data/real"][1, 2, 7] + 1j * fields["data/imag"][1, 2, 7]
    assert complex(acquisition.channel_data[0, 1, 7, 2]) == pytest.approx(expected)
    assert acquisition.sampling_frequency == 20.8e6 and acquisition.center_frequency == 5.208e6
    assert acquisition.probe_geometry.shape == (4, 3) and float(acquisition.probe_geometry[-1, 0]) == pytest.approx(1e-3)
    assert torch.allclose(acquisition.initial_times, torch.full((3,), 1e-6, dtype=torch.float64))
    _write_picmus(tmp_path / "rf.hdf5", iq=False)
    assert not read_ultrasound_hdf5(tmp_path / "rf.hdf5").channel_data.is_complex()  # a zero quadrature part: RF


def test_a_zea_file_reads_as_channel_data_and_images(tmp_path):
    with h5py.File(tmp_path / "zea.hdf5", "w") as file:
        file.create_dataset("data/raw_data", data=np.arange(2 * 3 * 5 * 4 * 2, dtype=np.float32).reshape(2, 3, 5, 4, 2))
        file.create_dataset("data/image", data=np.ones((2, 6, 7)))
        file.create_dataset("scan/probe_geometry", data=np.zeros((4, 3)))
        file.create_dataset("scan/sampling_frequency", data=np.float32(40e6))
        file.create_dataset("scan/center_frequency", data=np.float32(7e6))
        file.create_dataset("scan/polar_angles", data=np.array([-0.1, 0.0, 0.1]))
    acquisition = read_ultrasound_hdf5(tmp_path / "zea.hdf5")
    assert acquisition.layout == "zea" and acquisition.channel_data.shape == (2, 3, 5, 4) and acquisition.image.shape == (2, 6, 7)
    assert complex(acquisition.channel_data[0, 0, 0, 1]) == complex(2, 3)  # I and Q of element 1
    assert acquisition.sound_speed == 1540.0 and acquisition.center_frequency == 7e6
    assert torch.equal(acquisition.initial_times, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize(
    "drop, message",
    [
        ("probe_geometry", "lacks the dataset /US/US_DATASET0000/probe_geometry"),
        ("sampling_frequency", "lacks the dataset /US/US_DATASET0000/sampling_frequency"),
        ("data/real", "lacks the dataset /US/US_DATASET0000/data/real"),
    ],
)
def test_an_hdf5_file_missing_a_required_dataset_is_refused(tmp_path, drop, message):
    _write_picmus(tmp_path / "broken.hdf5", drop=drop)
    with pytest.raises(ValueError, match=message):
        read_ultrasound_hdf5(tmp_path / "broken.hdf5", "--input")


def test_files_of_neither_layout_are_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file.create_dataset("kspace", data=np.zeros(3))
    with pytest.raises(ValueError, match="neither a PICMUS file .* nor a zea file .*; it holds: kspace"):
        read_ultrasound_hdf5(tmp_path / "other.h5")
    with h5py.File(tmp_path / "tracks.h5", "w") as file:
        file.create_dataset("tracks/track_0/data/raw_data", data=np.zeros((1, 1, 2, 2, 1)))
    with pytest.raises(ValueError, match="multi-track zea file"):
        read_ultrasound_hdf5(tmp_path / "tracks.h5")
    with h5py.File(tmp_path / "empty_zea.h5", "w") as file:
        file.create_group("data")
        file.create_dataset("scan/probe_geometry", data=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="lacks data/raw_data and data/image"):
        read_ultrasound_hdf5(tmp_path / "empty_zea.h5")
    _write_picmus(tmp_path / "mismatch.hdf5", transmits=3)
    with h5py.File(tmp_path / "mismatch.hdf5", "a") as file:
        del file["US/US_DATASET0000/angles"]
        file["US/US_DATASET0000/angles"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"data/real must be \(transmits, elements, samples\) with 5 transmits"):
        read_ultrasound_hdf5(tmp_path / "mismatch.hdf5")
    (tmp_path / "corrupt.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        read_ultrasound_hdf5(tmp_path / "corrupt.h5")
