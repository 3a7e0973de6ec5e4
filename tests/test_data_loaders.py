"""Data loaders on SYNTHETIC fixture files in each task's released layout (tests/task_fixtures.py).

The fixtures hold random values with the released names, keys, shapes and dtypes; the tests check
that the real loading code reads them with the card's split semantics and preprocessing.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import task_fixtures as fx  # noqa: E402

from nb360.data import load  # noqa: E402
from nb360.errors import DataError, InputError  # noqa: E402
from nb360.tasks import get_task  # noqa: E402

BUILDERS = {
    "cifar100": fx.build_cifar100, "spherical": fx.build_spherical, "ninapro": fx.build_ninapro,
    "fsd50k": fx.build_fsd50k, "psicov": fx.build_psicov, "cosmic": fx.build_cosmic, "ecg": fx.build_ecg,
    "satellite": fx.build_satellite, "deepsea": fx.build_deepsea, "cifar10": fx.build_cifar10, "svhn": fx.build_svhn,
}


@pytest.fixture
def small_darcy(monkeypatch):
    """The released-file split constants shrunk so a few-sample fixture exercises the same code path."""
    import nb360.data.darcyflow as darcy

    monkeypatch.setattr(darcy, "N_POOL", 10)
    monkeypatch.setattr(darcy, "N_TRAIN", 8)
    monkeypatch.setattr(darcy, "N_TEST", 3)
    return darcy


# ----------------------------------------------------------------------------- every task
@pytest.mark.parametrize("name", list(BUILDERS))
def test_items_have_the_card_shape_and_retrain_follows_the_card(tmp_path: Path, name: str) -> None:
    BUILDERS[name](tmp_path)
    card = get_task(name)
    search = load(name, tmp_path, "search")
    retrain = load(name, tmp_path, "retrain")
    assert set(search) == set(retrain) == {"train", "val", "test"} and retrain["val"] is None
    x = search["train"][0][0]
    assert tuple(x.shape) == card.input_shape and x.dtype == torch.float32
    if name != "ecg":  # ECG's retrain re-splits the recordings instead of merging
        merged = len(search["train"]) + len(search["val"])
        assert len(retrain["train"]) == (merged if card.splits["retrain"]["merge_val"] else len(search["train"]))
        assert len(retrain["test"]) == len(search["test"])


@pytest.mark.parametrize("name", [*BUILDERS, "darcyflow"])
def test_missing_files_name_the_file_and_the_download_command(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError) as info:
        load(name, tmp_path, "search")
    message = str(info.value)
    assert f"`nb360 data download {name} --root {tmp_path}`" in message, message
    assert any(f.name in message for f in get_task(name).files), message
    assert "\n" not in message


def test_missing_root_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data root .*nope does not exist.*nb360 data download ninapro --root"):
        load("ninapro", tmp_path / "nope")
    fx.build_ninapro(tmp_path)
    with pytest.raises(InputError, match="unknown split_mode 'final'"):
        load("ninapro", tmp_path, "final")
    with pytest.raises(InputError, match="no data loader for task 'mnist'; known tasks: cifar100"):
        load("mnist", tmp_path)


def test_a_shared_data_root_with_task_subdirectories(tmp_path: Path) -> None:
    fx.build_ninapro(tmp_path / "ninapro")
    assert len(load("ninapro", tmp_path)["val"]) == 3
    with pytest.raises(DataError, match=r"nb360 data download satellite --root " + str(tmp_path)):
        load("satellite", tmp_path)


# ----------------------------------------------------------------------------- NinaPro
def test_ninapro_transposes_to_1x16x52(tmp_path: Path) -> None:
    raw = fx.build_ninapro(tmp_path)
    splits = load("ninapro", tmp_path)
    for part in ("train", "val", "test"):
        x_raw, y_raw = raw[part]
        assert len(splits[part]) == len(y_raw)
        x, y = splits[part][1]
        assert x.shape == (1, 16, 52)
        np.testing.assert_allclose(x[0].numpy(), x_raw[1].T.astype(np.float32))  # (52, 16) -> (16, 52)
        assert int(y) == y_raw[1] and y.dtype == torch.int64
    retrain = load("ninapro", tmp_path, "retrain")["train"]
    np.testing.assert_allclose(retrain[len(raw["train"][0])][0][0].numpy(), raw["val"][0][0].T.astype(np.float32))


def test_ninapro_corrupt_files_are_data_errors(tmp_path: Path) -> None:
    fx.build_ninapro(tmp_path)
    (tmp_path / "ninapro_val.npy").write_bytes((tmp_path / "ninapro_val.npy").read_bytes()[:200])
    with pytest.raises(DataError, match="ninapro_val.npy is not a valid released file.*nb360 data download ninapro"):
        load("ninapro", tmp_path)
    np.save(tmp_path / "ninapro_val.npy", np.zeros((3, 16, 52)))
    with pytest.raises(DataError, match=r"expected shape \(N, 52, 16\)"):
        load("ninapro", tmp_path)


def test_pickled_payloads_cannot_run_code(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "challenge2017.pkl").write_bytes(pickle.dumps({"data": [Exploit()], "label": ["N"]}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load("ecg", tmp_path)


# ----------------------------------------------------------------------------- CIFAR-100
@pytest.mark.parametrize("extracted", [False, True])
def test_cifar100_reads_the_python_pickle_release(tmp_path: Path, extracted: bool) -> None:
    raw = fx.build_cifar100(tmp_path, extracted=extracted)
    splits = load("cifar100", tmp_path)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (8, 2, 4)  # first 80% / last 20%
    mean = np.array([0.5071, 0.4867, 0.4408]).reshape(3, 1, 1)
    std = np.array([0.2675, 0.2565, 0.2761]).reshape(3, 1, 1)
    x, y = splits["val"][1]  # eval transform: normalize only; val is training image 9
    expected = (raw["train"][0][9].reshape(3, 32, 32) / 255.0 - mean) / std
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)
    assert int(y) == raw["train"][1][9]


def test_cifar100_training_augmentation(tmp_path: Path) -> None:
    raw = fx.build_cifar100(tmp_path)
    train = load("cifar100", tmp_path)["train"]
    plain = load("cifar100", tmp_path, augment=False)["train"]
    torch.manual_seed(0)
    draws = [train[0][0] for _ in range(8)]
    assert not all(torch.equal(draws[0], d) for d in draws[1:])
    for d in draws:
        assert d.shape == (3, 32, 32)
        assert bool((d == 0).all(dim=0).any())  # the Cutout square (zeros after normalization)
    mean = np.array([0.5071, 0.4867, 0.4408]).reshape(3, 1, 1)
    std = np.array([0.2675, 0.2565, 0.2761]).reshape(3, 1, 1)
    np.testing.assert_allclose(plain[0][0].numpy(), (raw["train"][0][0].reshape(3, 32, 32) / 255 - mean) / std,
                               atol=1e-5)


def test_cifar100_crop_and_cutout_geometry() -> None:
    from nb360.data.cifar100 import cutout, random_crop

    image = torch.arange(3 * 32 * 32, dtype=torch.float32).reshape(3, 32, 32) + 1
    torch.manual_seed(1)
    for _ in range(20):
        crop = random_crop(image, 4)
        assert crop.shape == (3, 32, 32)
        inside = crop[0][crop[0] > 0]
        assert inside.numel() >= 28 * 28  # at most 4 zero rows and columns of padding
        holes = (cutout(image, 16)[0] == 0).sum()
        assert 64 <= int(holes) <= 256  # a 16x16 square clipped at the border (at least 8x8 remains)


# ----------------------------------------------------------------------------- Spherical
def test_spherical_split_and_values(tmp_path: Path) -> None:
    raw = fx.build_spherical(tmp_path)
    splits = load("spherical", tmp_path)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (8, 2, 3)
    np.testing.assert_allclose(splits["val"][0][0].numpy(), raw["train"]["images"][8].astype(np.float32))
    assert int(splits["test"][2][1]) == raw["test"]["labels"][2]


# ----------------------------------------------------------------------------- Satellite
def test_satellite_z_scores_each_series_and_shifts_labels(tmp_path: Path) -> None:
    raw = fx.build_satellite(tmp_path)
    splits = load("satellite", tmp_path)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (24, 6, 6)  # val = last len(test)
    x, y = splits["val"][0]
    series = raw["train"]["data"][24]
    np.testing.assert_allclose(x[0].numpy(), (series - series.mean()) / series.std(), rtol=1e-5, atol=1e-6)
    assert int(y) == raw["train"]["label"][24] - 1
    xs = torch.stack([splits["train"][i][0] for i in range(24)])
    np.testing.assert_allclose(xs.mean(-1).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(xs.std(-1, unbiased=False).numpy(), 1, atol=1e-5)


# ----------------------------------------------------------------------------- DeepSEA
@pytest.mark.parametrize("compressed", [False, True])
def test_deepsea_one_hot_4x1000(tmp_path: Path, compressed: bool) -> None:
    raw = fx.build_deepsea(tmp_path, compressed=compressed)
    splits = load("deepsea", tmp_path)
    x, y = splits["test"][2]
    assert x.shape == (4, 1000) and y.shape == (36,) and y.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), raw["x_test"][2].T.astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), raw["y_test"][2])
    assert torch.all(x.sum(0) == 1)
    # a stored (uncompressed) npz is memory-mapped in place, a compressed one is read
    assert isinstance(splits["train"].inputs, np.memmap) is (not compressed)
    assert len(load("deepsea", tmp_path, "retrain")["train"]) == 6  # x_train only


# ----------------------------------------------------------------------------- ECG
def test_ecg_splits_strides_and_pids(tmp_path: Path) -> None:
    from sklearn.model_selection import train_test_split

    from nb360.data.ecg import CLASS_STRIDES

    raw = fx.build_ecg(tmp_path)
    n = len(raw["data"])
    splits = load("ecg", tmp_path)
    train_ids, held = train_test_split(np.arange(n), test_size=0.2, random_state=0)
    val_ids, test_ids = train_test_split(held, test_size=0.5, random_state=0)
    assert CLASS_STRIDES == (500, 83, 250, 25)
    for name, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        ds = splits[name]
        np.testing.assert_array_equal(ds.recording_ids, ids)
        label_of = {"N": 0, "A": 1, "O": 2, "~": 3}
        expected = sum(len(range(0, len(raw["data"][r]) - 1000, CLASS_STRIDES[label_of[raw["label"][r]]]))
                       for r in ids)
        assert len(ds) == expected
        # pid = the recording's position in its split; every window of a pid has that recording's label
        for pid in np.unique(ds.pid):
            r = ids[pid]
            assert set(ds.labels[ds.pid == pid]) == {label_of[raw["label"][r]]}
    assert 5 not in set(np.concatenate([splits[s].recording[:] for s in ("train", "val", "test")]))  # < 1000 samples

    ds = splits["val"]
    i = len(ds) - 1
    x, y = ds[i]
    r, start = ds.recording[i], ds.start[i]
    signal = np.asarray(raw["data"][r])
    expected = ((signal - signal.mean()) / signal.std())[start:start + 1000]
    assert x.shape == (1, 1000) and int(y) == ds.labels[i]
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_ecg_retrain_is_a_different_90_10_split(tmp_path: Path) -> None:
    from sklearn.model_selection import train_test_split

    fx.build_ecg(tmp_path)
    retrain = load("ecg", tmp_path, "retrain")
    train_ids, test_ids = train_test_split(np.arange(40), test_size=0.1, random_state=0)
    np.testing.assert_array_equal(retrain["test"].recording_ids, test_ids)
    np.testing.assert_array_equal(retrain["train"].recording_ids, train_ids)
    assert not hasattr(retrain["train"], "val")


# ----------------------------------------------------------------------------- Darcy Flow
@pytest.mark.parametrize("v73", [False, True])
def test_darcy_released_files_normalizer_and_grid(tmp_path: Path, small_darcy, v73: bool) -> None:
    raw = fx.build_darcyflow_released(tmp_path, v73=v73)
    splits = load("darcyflow", tmp_path)
    train, val, test = splits["train"], splits["val"], splits["test"]
    assert (len(train), len(val), len(test)) == (8, 2, 3)
    coeff = raw["train"][0][:, ::5, ::5].astype(np.float32)  # 421 -> 85
    sol = raw["train"][1][:, ::5, ::5].astype(np.float32)
    assert coeff.shape[1:] == (85, 85)
    # normalizer statistics from the 8 training samples only (unbiased std, eps 1e-5)
    mean, std = coeff[:8].astype(np.float64).mean(0), coeff[:8].astype(np.float64).std(0, ddof=1)
    np.testing.assert_allclose(train.x_normalizer.mean.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(train.x_normalizer.std.numpy(), std, rtol=1e-5)
    x, y = val[1]
    assert x.shape == (3, 85, 85)
    np.testing.assert_allclose(x[0].numpy(), (coeff[9] - mean) / (std + 1e-5), rtol=1e-4, atol=1e-4)
    grid = np.linspace(0, 1, 85)
    np.testing.assert_allclose(x[1].numpy(), np.broadcast_to(grid[None, :], (85, 85)), atol=1e-7)  # x along columns
    np.testing.assert_allclose(x[2].numpy(), np.broadcast_to(grid[:, None], (85, 85)), atol=1e-7)  # y along rows
    # train targets encoded, val/test raw; decode inverts encode
    assert train.targets_normalized and not val.targets_normalized and not test.targets_normalized
    np.testing.assert_allclose(y.numpy(), sol[9], rtol=1e-6)
    np.testing.assert_allclose(train.y_normalizer.decode(train[0][1]).numpy(), sol[0], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(test[0][1].numpy(), raw["test"][1][0, ::5, ::5], rtol=1e-6)
    assert train.source == "released"


def test_darcy_retrain_refits_on_train_plus_val(tmp_path: Path, small_darcy) -> None:
    raw = fx.build_darcyflow_released(tmp_path)
    retrain = load("darcyflow", tmp_path, "retrain")
    assert len(retrain["train"]) == 10 and retrain["val"] is None
    coeff = raw["train"][0][:10, ::5, ::5]
    np.testing.assert_allclose(retrain["train"].x_normalizer.mean.numpy(), coeff.mean(0), rtol=1e-6)


def test_darcy_half_a_release_is_reported_not_replaced(tmp_path: Path, small_darcy) -> None:
    fx.build_darcyflow_released(tmp_path)
    (tmp_path / "piececonst_r421_N1024_smooth2.mat").unlink()
    with pytest.raises(DataError, match=r"missing data file piececonst_r421_N1024_smooth2\.mat"):
        load("darcyflow", tmp_path)


def test_darcy_missing_everything_mentions_download_and_generate(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load("darcyflow", tmp_path)
    message = str(info.value)
    assert "piececonst_r421_N1024_smooth1.mat, piececonst_r421_N1024_smooth2.mat" in message
    assert f"`nb360 data download darcyflow --root {tmp_path}`" in message
    assert f"`nb360 data generate darcyflow --root {tmp_path}`" in message


def test_darcy_generated_fallback(tmp_path: Path) -> None:
    from nb360.data.darcy_generator import generate_darcyflow

    generate_darcyflow(tmp_path, n_train=12, n_test=3, resolution=85, seed=0, workers=1, progress=False)
    splits = load("darcyflow", tmp_path)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (11, 1, 3)  # last 10% (>= 1) is val
    assert splits["train"].source == "generated" and splits["train"].provenance["generated"] is True
    x, y = splits["test"][0]
    assert x.shape == (3, 85, 85) and y.shape == (85, 85)  # an 85 grid is used as is (sub 1)
    assert len(load("darcyflow", tmp_path, "retrain")["train"]) == 12
    # a changed file no longer matches its provenance record
    path = tmp_path / "darcyflow_generated_test.mat"
    path.write_bytes(path.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(DataError, match="does not match its provenance record"):
        load("darcyflow", tmp_path)


def test_darcy_generated_split_rule() -> None:
    from nb360.data.darcyflow import generated_split

    assert generated_split(1024) == (900, 100)
    assert generated_split(1000) == (900, 100)
    assert generated_split(400) == (360, 40)
    assert generated_split(12) == (11, 1)
    assert generated_split(3) == (2, 1)
    with pytest.raises(InputError, match="at least 3 samples"):
        generated_split(2)


# ----------------------------------------------------------------------------- PSICOV
@pytest.mark.parametrize("extracted", [False, True])
def test_psicov_57_channels_and_128_crops(tmp_path: Path, extracted: bool) -> None:
    raw = fx.build_psicov(tmp_path, extracted=extracted)
    splits = load("psicov", tmp_path)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (3, 100, 2)
    assert splits["val"].pdb_ids == raw["deepcov"][:100] and splits["train"].pdb_ids == raw["deepcov"][100:]

    # a short training protein: the padded map sits at the top-left of the 128 canvas, offset 5
    pdb = raw["deepcov"][101]
    features = pickle.loads(raw["members"][f"deepcov/features/{pdb}.pkl"])
    length = raw["lengths"][pdb]
    x, y = splits["train"][1]
    assert x.shape == (57, 128, 128) and y.shape == (1, 128, 128)
    inner = np.s_[5:5 + length, 5:5 + length]
    np.testing.assert_allclose(x[0][inner].numpy(), np.broadcast_to(features["ss"][0][None, :], (length, length)),
                               rtol=1e-6)  # ss row 0 along columns
    np.testing.assert_allclose(x[1][inner].numpy(), np.broadcast_to(features["ss"][0][:, None], (length, length)),
                               rtol=1e-6)  # ... and its transpose
    np.testing.assert_allclose(x[6][inner].numpy(), np.broadcast_to(features["pssm"][:, 0][None, :],
                                                                    (length, length)), rtol=1e-6)
    np.testing.assert_allclose(x[54][inner].numpy(), features["ccmpred"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x[56][inner].numpy(), features["potential"], rtol=1e-5, atol=1e-6)
    assert float(x[:, :5].abs().sum()) == 0 and float(x[:, 5 + length:].abs().sum()) == 0
    assert float(y.max()) <= 16.0 and float(y[0, 0, 0]) == 16.0  # padding (100) clipped to 16

    # the long protein (130 residues, padded 140) gives random 128 windows
    torch.manual_seed(0)
    crops = [splits["train"][0][0] for _ in range(6)]
    assert all(c.shape == (57, 128, 128) for c in crops)
    assert not all(torch.equal(crops[0], c) for c in crops[1:])


def test_psicov_test_items_are_full_512_maps_with_raw_distances(tmp_path: Path) -> None:
    from nb360.data.psicov import distance_map

    raw = fx.build_psicov(tmp_path, n_deepcov=101, long_protein=15)
    test = load("psicov", tmp_path)["test"]
    pdb = raw["psicov"][0]
    record = np.load(io.BytesIO(raw["members"][f"psicov/distance/{pdb}-cb.npy"]), allow_pickle=True)
    length = raw["lengths"][pdb]
    x, y = test[0]
    assert x.shape == (57, 512, 512) and y.shape == (1, 512, 512)
    np.testing.assert_allclose(y[0, 5:5 + length, 5:5 + length].numpy(), distance_map(length, record[2], pdb),
                               rtol=1e-6)
    assert float(y[0, 0, 0]) == 100.0 and float(y[0, 511, 511]) == 100.0  # unclipped padding
    assert test.lengths == {p: raw["lengths"][p] for p in raw["psicov"]}


def test_psicov_distance_clean_up() -> None:
    from nb360.data.psicov import distance_map

    cb = np.array([[0.0, 3.8, 7.0], [3.8, np.nan, 0.5], [7.0, 0.5, 0.0]])
    y = distance_map(3, cb, "toy")
    assert y[0, 0] == 3.8 and y[2, 2] == 1.0  # ends copied from their neighbour (0.5 raised to 1.0 first)
    assert np.isnan(y[1, 1])  # a missing diagonal stays missing
    assert y[1, 2] == 1.0 and y[2, 1] == 1.0  # distances below 1 become 1


# ----------------------------------------------------------------------------- Cosmic
@pytest.mark.parametrize("extracted", [False, True])
def test_cosmic_selection_crop_and_ignore_mask(tmp_path: Path, extracted: bool) -> None:
    raw = fx.build_cosmic(tmp_path, extracted=extracted)
    splits = load("cosmic", tmp_path, eval_sky="off")
    # two f435w GAL fields x 5 images; the GC field and the f606w field are dropped; 90/10 positional split
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (9, 1, 3)
    members = splits["train"].members + splits["val"].members
    assert all("/f435w/" in m and ("/10760/2/" in m or "/13737/3/" in m) for m in members)
    assert members == sorted(members)
    test = splits["test"]
    for i, member in enumerate(test.members):
        key = member[member.index("npy_test"):]
        planes = raw["test"][key]
        image, mask, ignore = test[i]
        assert image.shape == mask.shape == ignore.shape == (1, 128, 128)
        np.testing.assert_array_equal(image[0].numpy(), planes[0][64:192, 64:192])  # no sky offset when "off"
        np.testing.assert_array_equal(mask[0].numpy(), planes[1][64:192, 64:192])
        expected_ignore = planes[2][64:192, 64:192] if planes.shape[0] == 3 else np.zeros((128, 128))
        np.testing.assert_array_equal(ignore[0].numpy(), expected_ignore)


def test_cosmic_sky_augmentation(tmp_path: Path) -> None:
    raw = fx.build_cosmic(tmp_path)
    fixed = load("cosmic", tmp_path)["test"]  # default eval_sky="fixed"
    member = fixed.members[1]
    key = member[member.index("npy_test"):]
    number = int(key.rsplit("/", 1)[1].split("_")[0])
    sky = raw["test"][key.rsplit("/", 1)[0] + "/sky.npy"][number - 1]
    crop = raw["test"][key][0][64:192, 64:192]
    offsets = {float((fixed[1][0][0] - torch.from_numpy(crop)).mean()) for _ in range(3)}
    assert len(offsets) == 1  # the same draw at every evaluation
    (offset,) = offsets
    assert -0.9 * sky - 1e-3 <= offset <= 3.0 * sky + 1e-3 and offset != 0
    train = load("cosmic", tmp_path)["train"]
    torch.manual_seed(0)
    draws = {round(float(train[0][0].mean()), 4) for _ in range(5)}
    assert len(draws) > 1  # training draws a new offset each time
    with pytest.raises(InputError, match="eval_sky must be one of fixed, random, off"):
        load("cosmic", tmp_path, eval_sky="sometimes")


# ----------------------------------------------------------------------------- FSD50K
@pytest.mark.parametrize("extracted", [False, True])
def test_fsd50k_clips_chunks_and_labels(tmp_path: Path, extracted: bool) -> None:
    raw = fx.build_fsd50k(tmp_path, extracted=extracted)
    splits = load("fsd50k", tmp_path)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (3, 2, 2)  # clips, not chunks
    for part in ("val", "test"):
        for i, (_clip, labels, n_chunks) in enumerate(sorted(raw["clips"][part])):
            x, y = splits[part][i]
            assert x.shape == (n_chunks, 1, 96, 101)
            assert {raw["labels"][j] for j in np.flatnonzero(y.numpy())} == set(labels)
            assert torch.allclose(x.mean(dim=(1, 2, 3)), torch.zeros(n_chunks), atol=1e-4)  # per-chunk centring
    torch.manual_seed(0)
    x, y = splits["train"][2]
    assert x.shape == (1, 96, 101) and y.shape == (200,) and int(y.sum()) >= 1


def test_fsd50k_train_augmentation_and_switches(tmp_path: Path) -> None:
    fx.build_fsd50k(tmp_path)
    plain = load("fsd50k", tmp_path, augment=False)["train"]
    assert plain.noise == []
    clip0 = [plain[0][0] for _ in range(3)]  # clip 0 has a single chunk: no randomness left
    assert all(torch.equal(clip0[0], c) for c in clip0)
    train = load("fsd50k", tmp_path)["train"]
    assert train.noise == ["data/noise_22050/noise0.wav"]
    torch.manual_seed(0)
    draws = [train[0][0] for _ in range(6)]
    assert not all(torch.equal(draws[0], d) for d in draws[1:])


def test_log_mel_matches_its_definition() -> None:
    """torch.stft power spectrum + HTK filterbank, against an independent numpy DFT and filter loop."""
    from nb360.data import audio

    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(22050) * 0.1).astype(np.float64)
    # independent STFT: reflect pad n_fft/2, periodic Hann(661) centred in 1920, hop 220
    padded = np.pad(signal, 960, mode="reflect")
    window = np.zeros(1920)
    k = np.arange(661)
    window[629:629 + 661] = 0.5 - 0.5 * np.cos(2 * np.pi * k / 661)
    frames = np.stack([padded[t * 220:t * 220 + 1920] * window for t in range(101)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (101, 961)
    # independent HTK filterbank
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0), mel(11025), 98) / 2595) - 1)
    freqs = np.linspace(0, 11025, 961)
    fb = np.zeros((961, 96))
    for m in range(96):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[:, m] = np.maximum(0, np.minimum((freqs - lo) / (centre - lo), (hi - freqs) / (hi - centre)))
    expected = (power @ fb).T
    got = audio.power_mel(signal.astype(np.float32)).numpy()
    assert got.shape == (96, 101)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-6 * expected.max())
    np.testing.assert_allclose(audio.mel_filterbank().numpy(), fb, atol=1e-5)

    feature = audio.log_mel(signal.astype(np.float32))
    db = 10 * np.log10(np.maximum(1e-10, expected))
    db = np.maximum(db, db.max() - 80) + 75
    np.testing.assert_allclose(feature, db - db.mean(), atol=5e-3)
    assert abs(float(feature.mean())) < 1e-4 and float(feature.max() - feature.min()) <= 80 + 1e-3


def test_short_chunks_are_tiled_to_one_second() -> None:
    from nb360.data.audio import read_wav

    samples = (np.arange(15000) % 100).astype(np.int16)
    x = read_wav(fx._wav_bytes(samples))
    assert len(x) == 22050
    np.testing.assert_allclose(x[15000:], samples[:7050] / 2 ** 15)
    with pytest.raises(ValueError, match="sampled at 16000 Hz"):
        read_wav(fx._wav_bytes(samples, rate=16000))


def test_darcy_subsampling_follows_the_grid_size() -> None:
    from nb360.data.darcyflow import _subsampling

    assert _subsampling(421, None) == (5, 85)  # the released grid -> the benchmark's 85 x 85
    assert _subsampling(85, None) == (1, 85)  # a stand-in already at the target resolution
    assert _subsampling(16, None) == (1, 16)
    assert _subsampling(421, 2) == (2, 211)


def test_darcy_neuralop_import_is_the_last_fallback(tmp_path: Path) -> None:
    import json

    coeff, sol = fx.darcy_arrays(12, 16)
    fx.write_mat_v5(tmp_path / "darcyflow_neuralop_train_16.mat", coeff, sol)
    fx.write_mat_v5(tmp_path / "darcyflow_neuralop_test_16.mat", *fx.darcy_arrays(4, 16, seed=9))
    with pytest.raises(DataError, match="missing data files piececonst"):
        load("darcyflow", tmp_path)  # no provenance record: not taken
    (tmp_path / "darcyflow_neuralop.json").write_text(json.dumps({"generated": False, "source": "synthetic"}))
    splits = load("darcyflow", tmp_path)
    assert splits["train"].source == "neuralop" and (len(splits["train"]), len(splits["val"])) == (11, 1)
    assert splits["test"][0][0].shape == (3, 16, 16)
    with pytest.raises(DataError, match="nb360 data generate darcyflow"):
        load("darcyflow", tmp_path, source="generated")


@pytest.mark.parametrize("name", ["psicov", "cosmic", "fsd50k"])
def test_archive_backed_datasets_work_in_dataloader_workers(tmp_path: Path, name: str) -> None:
    if name == "psicov":
        fx.build_psicov(tmp_path, n_deepcov=101, long_protein=20)
    else:
        BUILDERS[name](tmp_path)
    dataset = load(name, tmp_path)["train"]
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=True, num_workers=2)
    batches = list(loader)  # every worker opens its own handle on the zip/tar
    assert len(batches) == len(dataset)


def test_unknown_loader_options_are_input_errors(tmp_path: Path) -> None:
    fx.build_ninapro(tmp_path)
    with pytest.raises(InputError, match="ninapro takes no loader options"):
        load("ninapro", tmp_path, augment=False)


# ----------------------------------------------------------------------------- the E2RNAS suite: CIFAR-10, SVHN
@pytest.mark.parametrize("extracted", [False, True])
def test_cifar10_reads_the_python_batches_with_the_e2rnas_split(tmp_path: Path, extracted: bool) -> None:
    from nb360.data.cifar10 import MEAN, STD

    raw = fx.build_cifar10(tmp_path, per_batch=4, extracted=extracted)
    search, retrain = load("cifar10", tmp_path, "search"), load("cifar10", tmp_path, "retrain", augment=False)
    assert (len(search["train"]), len(search["val"]), len(search["test"])) == (10, 10, 4)  # 20 images: 50/50
    assert len(retrain["train"]) == 20 and retrain["val"] is None
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    x, y = search["val"][3]  # index 10 + 3 of the training images, in batch order, no shuffle
    expected = (torch.from_numpy(raw["train"][0][13].reshape(3, 32, 32).astype(np.float32)) / 255 - mean) / std
    assert torch.allclose(x, expected) and int(y) == raw["train"][1][13]
    xt, yt = search["test"][1]
    assert int(yt) == raw["test"][1][1] and xt.shape == (3, 32, 32)


def test_cifar10_corrupt_and_missing_batches(tmp_path: Path) -> None:
    fx.build_cifar10(tmp_path, extracted=True)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="data_batch_3"):
        load("cifar10", tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load("cifar10", tmp_path)


def test_svhn_reads_the_mat_files_and_maps_label_10_to_digit_0(tmp_path: Path) -> None:
    from nb360.data.svhn import MEAN, STD

    raw = fx.build_svhn(tmp_path, n_train=11, n_test=4)
    search = load("svhn", tmp_path, "search", augment=False)
    assert (len(search["train"]), len(search["val"]), len(search["test"])) == (5, 6, 4)  # floor(11 / 2) = 5
    x, y = search["train"][0]
    pixels = torch.from_numpy(np.transpose(raw["train"][0][..., 0], (2, 0, 1)).astype(np.float32)) / 255
    assert torch.allclose(x, (pixels - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1))
    assert int(y) == 0  # the fixture's first label is 10, SVHN's code for the digit 0
    labels = [int(search["val"][i][1]) for i in range(6)]
    assert labels == [int(v) % 10 for v in raw["train"][1][5:, 0]]
    assert len(load("svhn", tmp_path, "retrain")["train"]) == 11


def test_svhn_bad_files_are_data_errors(tmp_path: Path) -> None:
    from scipy.io import savemat

    fx.build_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DataError, match="test_32x32.mat"):
        load("svhn", tmp_path)
    savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [3]])})
    with pytest.raises(DataError, match="labels must be 1..10"):
        load("svhn", tmp_path)
