"""Tests of the fastMRI HDF5 reader, slice dataset and writers (datasets/io/fastmri.py).

The fixture files are written with h5py directly, in the layout of the fastMRI
dataset (Zbontar et al. 2018, arXiv:1811.08839), so the reader is checked against
that layout and not only against our own writer.
"""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from invsolve.datasets.io.fastmri import (
    FastMRIHeader,
    FastMRISliceDataset,
    collate_fastmri_slices,
    read_fastmri_volume,
    write_fastmri_reconstruction,
    write_fastmri_volume,
)

# encodedSpace 32 x 24 x 1, reconSpace 16 x 16 x 1, kspace_encoding_step_1 center 10,
# maximum 19: padding_left = 24 // 2 - 10 = 2, padding_right = 2 + 19 + 1 = 22.
HEADER_XML = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <experimentalConditions><H1resonanceFrequency_Hz>63646310</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>32</x><y>24</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>280</x><y>140</y><z>4.5</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>16</x><y>16</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm>
    </reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>19</maximum><center>10</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>2</maximum><center>0</center></slice>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>
"""
PAD_LEFT, PAD_RIGHT = 2, 22
SLICES, COILS, HEIGHT, WIDTH = 3, 4, 32, 24


def _kspace(shape, seed):
    """Random complex64 k-space with the padded columns zero, as in fastMRI files."""
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    values[..., :PAD_LEFT] = 0
    values[..., PAD_RIGHT:] = 0
    return values


def _images(shape, seed):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _write_raw(path, header=HEADER_XML, attrs=None, **datasets):
    """Write an HDF5 file with h5py only: the given datasets, the header and the attributes."""
    with h5py.File(path, "w") as file:
        for name, value in datasets.items():
            file.create_dataset(name, data=value)
        if header is not None:
            file["ismrmrd_header"] = header
        file.attrs.update(attrs or {})
    return path


@pytest.fixture
def files(tmp_path):
    """A multi-coil training file, a single-coil file and a test-set file, named in index order."""
    multi = {"kspace": _kspace((SLICES, COILS, HEIGHT, WIDTH), 0), "reconstruction_rss": _images((SLICES, 16, 16), 1)}
    single = {
        "kspace": _kspace((2, HEIGHT, WIDTH), 2),
        "reconstruction_esc": _images((2, 16, 16), 3),
        "reconstruction_rss": _images((2, 16, 16), 4),
    }
    mask = np.zeros(WIDTH, dtype=bool)
    mask[[3, 7, 10, 11, 12, 13, 16, 20]] = True
    test = {"kspace": _kspace((2, COILS, HEIGHT, WIDTH), 5) * mask, "mask": mask}
    attrs = {"acquisition": "CORPD_FBK", "max": 0.75, "norm": 12.5, "patient_id": "abc123"}
    test_attrs = {"acquisition": "CORPD_FBK", "patient_id": "def456", "acceleration": 4, "num_low_frequency": 4}
    return {
        "folder": tmp_path,
        "multi": (_write_raw(tmp_path / "a_multi.h5", attrs=attrs, **multi), multi),
        "single": (_write_raw(tmp_path / "b_single.h5", attrs=attrs, **single), single),
        "test": (_write_raw(tmp_path / "c_test.h5", attrs=test_attrs, **test), test),
    }


# ----------------------------------------------------------------------------- reading


def test_read_multicoil_volume(files):
    path, raw = files["multi"]
    volume = read_fastmri_volume(path)
    assert volume.path == path and not volume.single_coil
    assert volume.kspace.dtype == torch.complex64 and volume.kspace.shape == (SLICES, COILS, HEIGHT, WIDTH)
    assert torch.equal(volume.kspace, torch.from_numpy(raw["kspace"]))
    assert volume.target_key == "reconstruction_rss"
    assert volume.target.dtype == torch.float32 and volume.target.shape == (SLICES, 16, 16)
    assert torch.equal(volume.target, torch.from_numpy(raw["reconstruction_rss"]))
    assert volume.mask is None
    assert volume.header == FastMRIHeader((32, 24, 1), (16, 16, 1), center=10, maximum=19, fov_mm=(280, 140, 4.5))
    assert volume.header.pixel_mm == (280 / 32, 140 / 24)
    assert (volume.header.padding_left, volume.header.padding_right) == (PAD_LEFT, PAD_RIGHT)
    assert volume.header_xml == HEADER_XML
    assert volume.attrs == {"acquisition": "CORPD_FBK", "max": 0.75, "norm": 12.5, "patient_id": "abc123"}
    acquired = volume.header.acquired_columns(WIDTH)
    assert acquired.dtype == torch.bool and acquired.tolist() == [PAD_LEFT <= j < PAD_RIGHT for j in range(WIDTH)]
    # the padded columns hold no signal
    assert not volume.kspace[..., ~acquired].any()


def test_read_single_coil_volume_adds_coil_axis(files):
    path, raw = files["single"]
    volume = read_fastmri_volume(path)
    assert volume.single_coil and volume.kspace.shape == (2, 1, HEIGHT, WIDTH)
    assert torch.equal(volume.kspace[:, 0], torch.from_numpy(raw["kspace"]))
    assert volume.target_key == "reconstruction_esc"
    assert torch.equal(volume.target, torch.from_numpy(raw["reconstruction_esc"]))
    rss = read_fastmri_volume(path, target_key="reconstruction_rss")
    assert torch.equal(rss.target, torch.from_numpy(raw["reconstruction_rss"]))


def test_read_test_file_with_mask_and_no_target(files):
    path, raw = files["test"]
    volume = read_fastmri_volume(path)
    assert volume.target is None and volume.target_key is None
    assert volume.mask.dtype == torch.bool and torch.equal(volume.mask, torch.from_numpy(raw["mask"]))
    assert volume.attrs["acceleration"] == 4 and volume.attrs["num_low_frequency"] == 4
    assert "max" not in volume.attrs


def test_float_mask_of_zeros_and_ones_is_read_as_bool(tmp_path):
    mask = np.zeros(WIDTH, dtype=np.float32)
    mask[::3] = 1
    path = _write_raw(tmp_path / "f.h5", kspace=_kspace((1, 2, HEIGHT, WIDTH), 0), mask=mask)
    assert torch.equal(read_fastmri_volume(path).mask, torch.from_numpy(mask.astype(bool)))


def test_padding_rule_on_knee_like_numbers():
    # encoding y = 372, center = 170, maximum = 333: left = 186 - 170 = 16, right = 16 + 334 = 350.
    header = FastMRIHeader((640, 372, 1), (320, 320, 1), center=170, maximum=333)
    assert (header.padding_left, header.padding_right) == (16, 350)
    assert int(header.acquired_columns(372).sum()) == 334
    assert FastMRIHeader.from_xml(header.to_xml()) == header and header.fov_mm is None and header.pixel_mm is None
    with_fov = FastMRIHeader((640, 372, 1), (320, 320, 1), center=170, maximum=333, fov_mm=(280, 140.5, 0))
    assert FastMRIHeader.from_xml(with_fov.to_xml()).fov_mm == (280.0, 140.5, 0.0)
    with pytest.raises(ValueError, match=r"fov_mm must be a triple \(x, y, z\) of mm with x, y > 0"):
        FastMRIHeader((640, 372, 1), (320, 320, 1), center=170, maximum=333, fov_mm=(280, 0, 4))


def test_header_as_fixed_length_bytes(tmp_path):
    path = tmp_path / "bytes.h5"
    _write_raw(path, header=None, kspace=_kspace((1, 2, HEIGHT, WIDTH), 0))
    with h5py.File(path, "a") as file:
        file["ismrmrd_header"] = np.bytes_(HEADER_XML.encode())
    assert read_fastmri_volume(path).header.padding_right == PAD_RIGHT


# ----------------------------------------------------------------------------- dataset


def test_slice_dataset_indexes_all_slices_of_all_files(files):
    dataset = FastMRISliceDataset(files["folder"])
    assert dataset.files == (files["multi"][0], files["single"][0], files["test"][0])
    assert len(dataset) == SLICES + 2 + 2
    expected = [("multi", s) for s in range(SLICES)] + [("single", 0), ("single", 1), ("test", 0), ("test", 1)]
    for index, (kind, slice_index) in enumerate(expected):
        path, raw = files[kind]
        sample = dataset[index]
        assert sample["file"] == path.name and sample["slice"] == slice_index
        kspace = torch.from_numpy(raw["kspace"][slice_index])
        if kind == "single":
            kspace = kspace[None]
        assert sample["kspace"].dtype == torch.complex64 and torch.equal(sample["kspace"], kspace)
        assert (sample["padding_left"], sample["padding_right"]) == (PAD_LEFT, PAD_RIGHT)
    multi, single, test = dataset[1], dataset[4], dataset[-1]
    assert torch.equal(multi["target"], torch.from_numpy(files["multi"][1]["reconstruction_rss"][1]))
    assert torch.equal(single["target"], torch.from_numpy(files["single"][1]["reconstruction_esc"][1]))
    assert multi["mask"] is None and multi["max"] == 0.75 and multi["attrs"]["patient_id"] == "abc123"
    assert test["slice"] == 1 and test["target"] is None and test["max"] is None
    assert torch.equal(test["mask"], torch.from_numpy(files["test"][1]["mask"]))
    with pytest.raises(IndexError):
        dataset[len(dataset)]
    with pytest.raises(TypeError, match="index must be an int"):
        dataset["0"]


def test_slice_dataset_file_list_order_and_transform(files):
    paths = [files["test"][0], files["multi"][0]]
    dataset = FastMRISliceDataset(paths, transform=lambda sample: (sample["file"], sample["slice"]))
    assert [dataset[i] for i in range(len(dataset))] == [("c_test.h5", 0), ("c_test.h5", 1)] + [
        ("a_multi.h5", s) for s in range(SLICES)
    ]
    single_file = FastMRISliceDataset(files["multi"][0], target_key="reconstruction_rss")
    assert len(single_file) == SLICES and single_file[0]["target"].shape == (16, 16)


def test_dataloader_with_two_workers(files):
    dataset = FastMRISliceDataset(files["folder"])
    restored = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(restored[4]["kspace"], dataset[4]["kspace"])

    unbatched = list(DataLoader(dataset, batch_size=None, num_workers=2))
    assert [(s["file"], s["slice"]) for s in unbatched] == [(dataset[i]["file"], dataset[i]["slice"]) for i in range(7)]
    assert all(torch.equal(s["kspace"], dataset[i]["kspace"]) for i, s in enumerate(unbatched))

    multi = FastMRISliceDataset([files["multi"][0]])
    batches = list(DataLoader(multi, batch_size=2, num_workers=2, collate_fn=collate_fastmri_slices))
    assert [b["kspace"].shape for b in batches] == [(2, COILS, HEIGHT, WIDTH), (1, COILS, HEIGHT, WIDTH)]
    assert batches[0]["target"].shape == (2, 16, 16) and batches[0]["mask"] is None
    assert batches[0]["slice"] == [0, 1] and batches[1]["file"] == ["a_multi.h5"]
    assert torch.equal(batches[1]["kspace"][0], torch.from_numpy(files["multi"][1]["kspace"][2]))


def test_collate_rejects_mixed_samples(files):
    dataset = FastMRISliceDataset(files["folder"])
    with pytest.raises(ValueError, match=r"'target'.*None for \['c_test.h5\[0\]'\]"):
        collate_fastmri_slices([dataset[0], dataset[5]])
    with pytest.raises(ValueError, match="different shapes"):
        collate_fastmri_slices([dataset[0], dataset[3]])
    with pytest.raises(ValueError, match="at least one sample"):
        collate_fastmri_slices([])


def test_dataset_without_headers_when_allowed(tmp_path):
    path = _write_raw(tmp_path / "plain.h5", header=None, kspace=_kspace((2, 2, HEIGHT, WIDTH), 0))
    with pytest.raises(ValueError, match="ismrmrd_header"):
        FastMRISliceDataset(path)
    sample = FastMRISliceDataset(path, require_header=False)[1]
    assert sample["padding_left"] is None and sample["padding_right"] is None
    assert read_fastmri_volume(path, require_header=False).header is None


# ----------------------------------------------------------------------------- writing


def test_write_volume_round_trip_in_fastmri_layout(tmp_path):
    kspace = torch.from_numpy(_kspace((SLICES, COILS, HEIGHT, WIDTH), 7))
    target = torch.from_numpy(_images((SLICES, 16, 16), 8)).double()
    mask = torch.arange(WIDTH) % 2 == 0
    attrs = {"acquisition": "AXT2", "norm": 3.5, "patient_id": "p", "acceleration": 2, "num_low_frequency": 6}
    path = tmp_path / "out" / "vol.h5"
    assert write_fastmri_volume(path, kspace, mask=mask, header=HEADER_XML, target=target, attrs=attrs) == path
    with h5py.File(path, "r") as file:
        assert set(file) == {"kspace", "reconstruction_rss", "mask", "ismrmrd_header"}
        assert file["kspace"].dtype == np.complex64 and file["kspace"].shape == (SLICES, COILS, HEIGHT, WIDTH)
        assert file["reconstruction_rss"].dtype == np.float32 and file["mask"].dtype == np.bool_
        assert file["ismrmrd_header"][()].decode() == HEADER_XML
        assert file.attrs["max"] == pytest.approx(float(target.max()))
    volume = read_fastmri_volume(path)
    assert torch.equal(volume.kspace, kspace) and torch.equal(volume.mask, mask)
    assert torch.equal(volume.target, target.float())
    assert volume.header_xml == HEADER_XML and volume.header.padding_left == PAD_LEFT
    assert volume.attrs == {**attrs, "max": pytest.approx(float(target.max()))}


def test_write_single_coil_with_default_header(tmp_path):
    kspace = torch.from_numpy(_kspace((2, 1, HEIGHT, WIDTH), 9))
    target = torch.rand(2, 20, 18)
    path = write_fastmri_volume(tmp_path / "single.h5", kspace, single_coil=True, target=target)
    with h5py.File(path, "r") as file:
        assert file["kspace"].shape == (2, HEIGHT, WIDTH) and "reconstruction_esc" in file
    volume = read_fastmri_volume(path)
    assert volume.single_coil and torch.equal(volume.kspace, kspace)
    assert volume.header == FastMRIHeader((HEIGHT, WIDTH, 1), (20, 18, 1), center=WIDTH // 2, maximum=WIDTH - 1)
    assert (volume.header.padding_left, volume.header.padding_right) == (0, WIDTH)


def test_written_volume_reads_in_monai(tmp_path):
    from monai.apps.reconstruction.fastmri_reader import FastMRIReader

    kspace = torch.from_numpy(_kspace((2, COILS, HEIGHT, WIDTH), 10))
    path = write_fastmri_volume(tmp_path / "m.h5", kspace, attrs={"patient_id": "m"})
    reader = FastMRIReader()
    data, meta = reader.get_data(reader.read(path))
    np.testing.assert_array_equal(data, kspace.numpy())
    assert meta["patient_id"] == "m" and meta["filename"] == "m.h5"


def test_write_reconstruction_crops_like_fastmri(tmp_path):
    images = torch.rand(2, 330, 325, dtype=torch.float64)
    path = write_fastmri_reconstruction(tmp_path / "recon.h5", images)
    with h5py.File(path, "r") as file:
        assert list(file) == ["reconstruction"]
        stored = file["reconstruction"][()]
    assert stored.dtype == np.float32 and stored.shape == (2, 320, 320)
    # rows (330 - 320) // 2 = 5 ..., columns (325 - 320) // 2 = 2 ...
    np.testing.assert_array_equal(stored, images[:, 5:325, 2:322].float().numpy())
    small = write_fastmri_reconstruction(tmp_path / "small.h5", torch.ones(1, 9, 8), crop_size=(8, 8))
    with h5py.File(small, "r") as file:
        assert file["reconstruction"].shape == (1, 8, 8)


def test_writers_are_atomic(tmp_path, monkeypatch):
    path = write_fastmri_volume(tmp_path / "v.h5", torch.ones(1, 1, 4, 4, dtype=torch.complex64))
    reconstruction = write_fastmri_reconstruction(tmp_path / "r.h5", torch.ones(1, 4, 4), crop_size=(4, 4))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    original = h5py.Group.create_dataset
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) > 1 or args[0] == "reconstruction":
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_fastmri_volume(path, torch.zeros(2, 2, 8, 8, dtype=torch.complex64), target=torch.rand(2, 8, 8))
    with pytest.raises(RuntimeError, match="disk full"):
        write_fastmri_reconstruction(reconstruction, torch.zeros(3, 4, 4), crop_size=(4, 4))
    with pytest.raises(RuntimeError, match="disk full"):
        write_fastmri_reconstruction(tmp_path / "new.h5", torch.zeros(3, 4, 4), crop_size=(4, 4))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old files intact, no leftovers


# ----------------------------------------------------------------------------- bad input


def _bad_file(tmp_path, kind):
    """A file broken in one way; returns its path."""
    path = tmp_path / f"{kind}.h5"
    good = {"kspace": _kspace((2, 2, HEIGHT, WIDTH), 0)}
    if kind == "not_hdf5":
        path.write_text("kspace = [1, 2, 3]\n")
    elif kind == "truncated":
        _write_raw(path, **good)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "no_kspace":
        _write_raw(path, reconstruction_rss=_images((2, 16, 16), 0))
    elif kind == "real_kspace":
        _write_raw(path, kspace=np.abs(good["kspace"]))
    elif kind == "kspace_2d":
        _write_raw(path, kspace=good["kspace"][0, 0])
    elif kind == "mask_length":
        _write_raw(path, mask=np.ones(WIDTH - 1, dtype=bool), **good)
    elif kind == "mask_values":
        _write_raw(path, mask=np.full(WIDTH, 0.5, dtype=np.float32), **good)
    elif kind == "target_slices":
        _write_raw(path, reconstruction_rss=_images((3, 16, 16), 0), **good)
    elif kind == "no_header":
        _write_raw(path, header=None, **good)
    elif kind == "header_not_xml":
        _write_raw(path, header="<ismrmrdHeader><encoding>", **good)
    elif kind == "header_missing_center":
        _write_raw(path, header=HEADER_XML.replace("<center>10</center>", ""), **good)
    elif kind == "header_no_namespace":
        _write_raw(path, header=HEADER_XML.replace(' xmlns="http://www.ismrm.org/ISMRMRD"', ""), **good)
    elif kind == "header_not_integer":
        _write_raw(path, header=HEADER_XML.replace("<maximum>19</maximum>", "<maximum>nineteen</maximum>"), **good)
    elif kind == "header_fov":
        _write_raw(path, header=HEADER_XML.replace("<x>280</x>", "<x>wide</x>"), **good)
    elif kind == "header_padding":
        _write_raw(path, header=HEADER_XML.replace("<maximum>19</maximum>", "<maximum>40</maximum>"), **good)
    return path


@pytest.mark.parametrize(
    ("kind", "error", "match"),
    [
        ("not_hdf5", ValueError, "expected an HDF5 file"),
        ("truncated", ValueError, "truncated"),
        ("no_kspace", ValueError, r"expected a 'kspace' dataset.*reconstruction_rss"),
        ("real_kspace", TypeError, "'kspace' must be complex.*float32"),
        ("kspace_2d", ValueError, r"'kspace' must be \(slices, coils, H, W\).*\(32, 24\)"),
        ("mask_length", ValueError, r"'mask' must have shape \(24,\).*\(23,\)"),
        ("mask_values", TypeError, "'mask' must be bool or 0/1"),
        ("target_slices", ValueError, r"'reconstruction_rss' must have shape \(2, H', W'\).*\(3, 16, 16\)"),
        ("no_header", ValueError, "expected an 'ismrmrd_header' dataset"),
        ("header_not_xml", ValueError, "does not parse as XML"),
        ("header_missing_center", ValueError, "no element encoding/encodingLimits/kspace_encoding_step_1/center"),
        ("header_no_namespace", ValueError, "in the namespace http://www.ismrm.org/ISMRMRD"),
        ("header_not_integer", ValueError, "must be an integer, found 'nineteen'"),
        ("header_fov", ValueError, "encoding/encodedSpace/fieldOfView_mm/x must be a number, found 'wide'"),
        ("header_padding", ValueError, r"\[2, 43\).*outside the k-space width 24"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, kind, error, match):
    path = _bad_file(tmp_path, kind)
    for read in (read_fastmri_volume, FastMRISliceDataset):
        with pytest.raises(error, match=match) as caught:
            read(path)
        assert str(path) in str(caught.value)


def test_missing_paths_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.h5 does not exist"):
        read_fastmri_volume(tmp_path / "nothing.h5")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FastMRISliceDataset(tmp_path / "missing_folder")
    with pytest.raises(FileNotFoundError, match="gone.h5"):
        FastMRISliceDataset([tmp_path / "gone.h5"])
    with pytest.raises(ValueError, match="holds no .h5 files"):
        FastMRISliceDataset(tmp_path)
    with pytest.raises(ValueError, match="found a folder"):
        read_fastmri_volume(tmp_path)
    with pytest.raises(ValueError, match="empty sequence"):
        FastMRISliceDataset([])


def test_missing_explicit_target_key(files):
    path = files["test"][0]
    found = r"found datasets \['ismrmrd_header', 'kspace', 'mask'\]"
    with pytest.raises(ValueError, match=r"expected a target dataset 'reconstruction_rss', " + found):
        read_fastmri_volume(path, target_key="reconstruction_rss")
    with pytest.raises(ValueError, match="'recon' is in none of the 3 files"):
        FastMRISliceDataset(files["folder"], target_key="recon")
    dataset = FastMRISliceDataset(files["folder"], target_key="reconstruction_rss")
    assert dataset[-1]["target"] is None and dataset[3]["target"] is not None


def test_writer_argument_errors(tmp_path):
    kspace = torch.zeros(2, 3, 8, 6, dtype=torch.complex64)
    path = tmp_path / "w.h5"
    with pytest.raises(TypeError, match="kspace must be a complex tensor, got dtype torch.float32"):
        write_fastmri_volume(path, kspace.real)
    with pytest.raises(ValueError, match=r"kspace must have shape \(slices, coils, H, W\), got \(3, 8, 6\)"):
        write_fastmri_volume(path, kspace[0])
    with pytest.raises(ValueError, match="single_coil=True needs kspace with 1 coil"):
        write_fastmri_volume(path, kspace, single_coil=True)
    with pytest.raises(ValueError, match=r"mask must have shape \(W,\) = \(6,\).*\(8,\)"):
        write_fastmri_volume(path, kspace, mask=torch.ones(8, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a bool tensor, got torch.float32"):
        write_fastmri_volume(path, kspace, mask=torch.ones(6))
    with pytest.raises(ValueError, match=r"target must have shape \(2, H', W'\)"):
        write_fastmri_volume(path, kspace, target=torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="outside the k-space width 6"):
        write_fastmri_volume(path, kspace, header=HEADER_XML)
    with pytest.raises(ValueError, match="does not parse as XML"):
        write_fastmri_volume(path, kspace, header="not xml <")
    with pytest.raises(TypeError, match=r"attrs\['max'\] must be a string or a number"):
        write_fastmri_volume(path, kspace, attrs={"max": [1.0]})
    with pytest.raises(TypeError, match="reconstruction must be a floating-point tensor"):
        write_fastmri_reconstruction(path, torch.ones(1, 320, 320, dtype=torch.complex64))
    with pytest.raises(ValueError, match="at least 320x320.*got 300x400"):
        write_fastmri_reconstruction(path, torch.ones(1, 300, 400))
    with pytest.raises(ValueError, match=r"reconstruction must have shape \(slices, H, W\)"):
        write_fastmri_reconstruction(path, torch.ones(320, 320))
    assert not path.exists() and list(tmp_path.iterdir()) == []
