"""SYNTHETIC fixture files in each task's released layout, for the loader tests.

Every builder writes a handful of random samples with the released file names, keys, shapes and
dtypes into a directory, so the real loading code runs in CI without the (multi-GB, partly
dead-linked) downloads. The values are synthetic noise: they test reading and preprocessing, not
learning. Each builder returns what a test needs to check the loader against (e.g. raw arrays).
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- CIFAR-100
def build_cifar100(root: Path, *, n_train: int = 10, n_test: int = 4, extracted: bool = False) -> dict[str, Any]:
    """cifar-100-python.tar.gz (or its extracted folder) with python-2 style pickles: bytes keys, (N, 3072) uint8."""
    rng = _rng(0)
    batches = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).tolist()
        batches[split] = {b"batch_label": f"synthetic {split}".encode(), b"fine_labels": fine,
                          b"coarse_labels": [f // 5 for f in fine], b"data": data,
                          b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"s{i}".encode() for i in range(20)]}
    payloads = {name: pickle.dumps(obj, protocol=2) for name, obj in (("train", batches["train"]),
                                                                        ("test", batches["test"]), ("meta", meta))}
    _write_tree(root, "cifar-100-python", "cifar-100-python.tar.gz", payloads, extracted)
    return {split: (b[b"data"], np.array(b[b"fine_labels"])) for split, b in batches.items()}


# ----------------------------------------------------------------------------- CIFAR-10 (E2RNAS suite)
def build_cifar10(root: Path, *, per_batch: int = 4, n_test: int = 4, extracted: bool = False,
                  seed: int = 10) -> dict[str, Any]:
    """cifar-10-python.tar.gz (or cifar-10-batches-py/): five training batches + test_batch, keys data / labels."""
    rng = _rng(seed)
    batches = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        batches[name] = {b"batch_label": f"synthetic {name}".encode(),
                         b"labels": rng.integers(0, 10, size=n).tolist(),
                         b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                         b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    payloads = {name: pickle.dumps(obj, protocol=2) for name, obj in batches.items()}
    payloads["batches.meta"] = pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}, protocol=2)
    _write_tree(root, "cifar-10-batches-py", "cifar-10-python.tar.gz", payloads, extracted)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return {"train": (np.concatenate([b[b"data"] for b in train]), np.concatenate([b[b"labels"] for b in train])),
            "test": (batches["test_batch"][b"data"], np.array(batches["test_batch"][b"labels"]))}


def _write_tree(root: Path, folder: str, archive: str, payloads: dict[str, bytes], extracted: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if extracted:
        (root / folder).mkdir()
        for name, payload in payloads.items():
            (root / folder / name).write_bytes(payload)
        return
    with tarfile.open(root / archive, "w:gz") as tar:
        for name, payload in payloads.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


# ----------------------------------------------------------------------------- SVHN (E2RNAS suite)
def build_svhn(root: Path, *, n_train: int = 10, n_test: int = 4, seed: int = 11) -> dict[str, Any]:
    """train_32x32.mat / test_32x32.mat (MATLAB v5 via scipy): X (32, 32, 3, N) uint8, y (N, 1) in 1..10."""
    from scipy.io import savemat

    rng = _rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
        y[0, 0] = 10  # the label of digit 0
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
        out[split] = (x, y)
    return out


# ----------------------------------------------------------------------------- Spherical
def build_spherical(root: Path, *, n_train: int = 10, n_test: int = 3) -> dict[str, Any]:
    """s2_cifar100.gz: gzip pickle {'train': {'images' (N, 3, 60, 60), 'labels'}, 'test': {...}}."""
    rng = _rng(1)
    payload = {split: {"images": rng.standard_normal((n, 3, 60, 60)), "labels": rng.integers(0, 100, n)}
               for split, n in (("train", n_train), ("test", n_test))}
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "s2_cifar100.gz", "wb") as fh:
        pickle.dump(payload, fh)
    return payload


# ----------------------------------------------------------------------------- NinaPro
def build_ninapro(root: Path, *, sizes: tuple[int, int, int] = (8, 3, 4)) -> dict[str, Any]:
    """ninapro_{train,val,test}.npy (N, 52, 16) float and label_{train,val,test}.npy (N,) in 0..17."""
    rng = _rng(2)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, n in zip(("train", "val", "test"), sizes, strict=True):
        x = rng.standard_normal((n, 52, 16))
        y = rng.integers(0, 18, n)
        np.save(root / f"ninapro_{part}.npy", x)
        np.save(root / f"label_{part}.npy", y)
        out[part] = (x, y)
    return out


# ----------------------------------------------------------------------------- FSD50K
def _wav_bytes(samples: np.ndarray, rate: int = 22050) -> bytes:
    from scipy.io import wavfile

    buffer = io.BytesIO()
    wavfile.write(buffer, rate, samples)
    return buffer.getvalue()


def build_fsd50k(root: Path, *, extracted: bool = False, clips: dict[str, int] | None = None) -> dict[str, Any]:
    """audio.zip: data/chunks/{tr,val,eval}.csv (files, labels, ext), data/chunks/lbl_map.json (200 labels),
    1-s int16 22,050 Hz chunk wavs under data/chunks/, and data/noise_22050/*.wav."""
    rng = _rng(3)
    clips = clips or {"train": 3, "val": 2, "test": 2}
    labels = [f"Label_{i}" for i in range(200)]
    label_map = json.dumps({label: i for i, label in enumerate(labels)}).encode()
    members: dict[str, bytes] = {"data/chunks/lbl_map.json": label_map}
    manifests = {"train": "tr.csv", "val": "val.csv", "test": "eval.csv"}
    truth: dict[str, list] = {}
    for split, n_clips in clips.items():
        lines = ["files,labels,ext"]
        truth[split] = []
        for c in range(n_clips):
            clip = f"{split}{c}"
            clip_labels = sorted({labels[int(i)] for i in rng.integers(0, 200, size=2)})
            n_chunks = 1 + c % 3
            for k in range(n_chunks):
                # the last chunk of a clip may be shorter than 1 s; the loader tiles it
                length = 22050 if k < n_chunks - 1 else 15000
                path = f"data/chunks/{'eval' if split == 'test' else 'dev'}/{clip}.{k}.wav"
                members[path] = _wav_bytes((rng.standard_normal(length) * 3000).astype(np.int16))
                lines.append(f'{path},"{",".join(clip_labels)}",{clip}')
            truth[split].append((clip, clip_labels, n_chunks))
        members[f"data/chunks/{manifests[split]}"] = ("\n".join(lines) + "\n").encode()
    members["data/noise_22050/noise0.wav"] = _wav_bytes((rng.standard_normal(30000) * 500).astype(np.int16))
    root.mkdir(parents=True, exist_ok=True)
    if extracted:
        for name, payload in members.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(payload)
    else:
        with zipfile.ZipFile(root / "audio.zip", "w") as zf:
            for name, payload in members.items():
                zf.writestr(name, payload)
    return {"labels": labels, "clips": truth}


# ----------------------------------------------------------------------------- Darcy Flow
def darcy_arrays(n: int, grid: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic coeff in {4, 12} and a smooth positive sol, (n, grid, grid) float64."""
    rng = _rng(seed)
    coeff = np.where(rng.standard_normal((n, grid, grid)) >= 0, 12.0, 4.0)
    axis = np.linspace(0, 1, grid)
    bump = np.outer(np.sin(np.pi * axis), np.sin(np.pi * axis))
    sol = bump[None] * (0.01 + 0.002 * rng.random((n, 1, 1))) + 1e-4 * rng.random((n, grid, grid))
    return coeff, sol


def write_mat_v5(path: Path, coeff: np.ndarray, sol: np.ndarray) -> None:
    """A MATLAB 5 .mat with fields coeff and sol, shape (N, R, R)."""
    from scipy.io import savemat

    savemat(path, {"coeff": coeff, "sol": sol})


def write_mat_v73(path: Path, coeff: np.ndarray, sol: np.ndarray) -> None:
    """A MATLAB 7.3 .mat (HDF5 with the 512-byte MATLAB user block): (N, R, R) arrays stored column-major,
    i.e. as HDF5 datasets of shape (R, R, N) holding the axis-reversed array."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, array in (("coeff", coeff), ("sol", sol)):
            handle.create_dataset(name, data=np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
            handle[name].attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: synthetic fixture HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def build_darcyflow_released(root: Path, *, n: int = 12, n_test: int = 4, grid: int = 421,
                             v73: bool = False) -> dict[str, Any]:
    """piececonst_r421_N1024_smooth{1,2}.mat with fields coeff and sol (few samples), v5 or v7.3."""
    root.mkdir(parents=True, exist_ok=True)
    train = darcy_arrays(n, grid, seed=4)
    test = darcy_arrays(n_test, grid, seed=5)
    writer = write_mat_v73 if v73 else write_mat_v5
    writer(root / "piececonst_r421_N1024_smooth1.mat", *train)
    writer(root / "piececonst_r421_N1024_smooth2.mat", *test)
    return {"train": train, "test": test}


# ----------------------------------------------------------------------------- PSICOV
def _protein(rng: np.random.Generator, length: int) -> tuple[dict, tuple]:
    features = {
        "seq": "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=length)),
        "ss": rng.random((3, length)), "pssm": rng.random((length, 22)), "sa": rng.random(length),
        "entropy": rng.random(length), "ccmpred": rng.standard_normal((length, length)) * 0.1,
        "freecon": rng.standard_normal((length, length)) * 0.1, "potential": rng.standard_normal((length, length)),
    }
    coords = np.cumsum(rng.standard_normal((length, 3)) * 2.0, axis=0)
    cb_map = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    distance = np.empty(3, dtype=object)
    distance[:] = [length, features["seq"], cb_map]
    return features, distance


def build_psicov(root: Path, *, n_deepcov: int = 103, n_psicov: int = 2, long_protein: int = 130,
                 extracted: bool = False) -> dict[str, Any]:
    """protein.zip: deepcov.lst, psicov.lst, <group>/features/<pdb>.pkl, <group>/distance/<pdb>-cb.npy.

    Proteins are 12..20 residues, except deepcov protein 100 (the first training protein) of
    `long_protein` residues, whose padded map exceeds the 128 window.
    """
    rng = _rng(6)
    members: dict[str, bytes] = {}
    lengths: dict[str, int] = {}
    deepcov = [f"dc{i:03d}" for i in range(n_deepcov)]
    psicov = [f"ps{i:03d}" for i in range(n_psicov)]
    for group, names in (("deepcov", deepcov), ("psicov", psicov)):
        for i, pdb in enumerate(names):
            length = long_protein if (group == "deepcov" and i == 100) else int(rng.integers(12, 21))
            features, distance = _protein(rng, length)
            members[f"{group}/features/{pdb}.pkl"] = pickle.dumps(features)
            buffer = io.BytesIO()
            np.save(buffer, distance, allow_pickle=True)
            members[f"{group}/distance/{pdb}-cb.npy"] = buffer.getvalue()
            lengths[pdb] = length
        members[f"{group}.lst"] = ("\n".join(f"{pdb} {lengths[pdb]}" for pdb in names) + "\n").encode()
    root.mkdir(parents=True, exist_ok=True)
    if extracted:
        for name, payload in members.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(payload)
    else:
        with zipfile.ZipFile(root / "protein.zip", "w") as zf:
            for name, payload in members.items():
                zf.writestr(name, payload)
    return {"deepcov": deepcov, "psicov": psicov, "lengths": lengths, "members": members}


# ----------------------------------------------------------------------------- Cosmic
def build_cosmic(root: Path, *, n_train_per_field: int = 5, n_test: int = 3, extracted: bool = False,
                 image_size: int = 256) -> dict[str, Any]:
    """deepCR.ACS-WFC.{train,test}.tar: npy_<part>/<filter>/<prop_id>/<vis_num>/<n>_*.npy stacks (image, cr, ignore)
    plus sky.npy; two GAL fields (10760_2, 13737_3), one GC field (10595_2) and one f606w field to be skipped."""
    rng = _rng(7)
    layout = {"train": [("f435w", "10760", "2"), ("f435w", "13737", "3"), ("f435w", "10595", "2"),
                        ("f606w", "10760", "4")],
              "test": [("f435w", "12513", "2")]}
    truth: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
    root.mkdir(parents=True, exist_ok=True)
    for part, fields in layout.items():
        members: dict[str, bytes] = {}
        for filt, prop, vis in fields:
            n = n_train_per_field if part == "train" else n_test
            directory = f"npy_{part}/{filt}/{prop}/{vis}"
            sky = rng.uniform(10, 50, size=n)
            for k in range(1, n + 1):
                image = rng.standard_normal((image_size, image_size)).astype(np.float32) * 5
                mask = (rng.random((image_size, image_size)) < 0.01).astype(np.float32)
                ignore = (rng.random((image_size, image_size)) < 0.05).astype(np.float32)
                planes = np.stack([image, mask, ignore]) if k % 2 else np.stack([image, mask])  # some have no ignore
                buffer = io.BytesIO()
                np.save(buffer, planes)
                name = f"{directory}/{k}_synthetic.npy"
                members[name] = buffer.getvalue()
                truth[part][name] = planes
            buffer = io.BytesIO()
            np.save(buffer, sky)
            members[f"{directory}/sky.npy"] = buffer.getvalue()
            truth[part][f"{directory}/sky.npy"] = sky
        if extracted:
            for name, payload in members.items():
                (root / "data" / name).parent.mkdir(parents=True, exist_ok=True)
                (root / "data" / name).write_bytes(payload)
        else:
            with tarfile.open(root / f"deepCR.ACS-WFC.{part}.tar", "w") as tar:
                for name, payload in members.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return truth


# ----------------------------------------------------------------------------- ECG
def build_ecg(root: Path, *, n: int = 40) -> dict[str, Any]:
    """challenge2017.pkl: {'data': list of 1-D float recordings of varied length, 'label': list of N/A/O/~}."""
    rng = _rng(8)
    labels = [("N", "A", "O", "~")[i % 4] for i in range(n)]
    data = [rng.standard_normal(int(rng.integers(1500, 4000))) * 0.3 + 1.0 for _ in range(n)]
    data[5] = rng.standard_normal(900)  # shorter than one window: yields no window
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "challenge2017.pkl", "wb") as fh:
        pickle.dump({"data": data, "label": labels}, fh)
    return {"data": data, "label": labels}


# ----------------------------------------------------------------------------- Satellite
def build_satellite(root: Path, *, n_train: int = 30, n_test: int = 6) -> dict[str, Any]:
    """satellite_{train,test}.npy: pickled dicts {'data': (N, 46), 'label': (N,) in 1..24}."""
    rng = _rng(9)
    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        record = {"data": rng.random((n, 46)) * 1000 + 100, "label": rng.integers(1, 25, n)}
        np.save(root / f"satellite_{part}.npy", record, allow_pickle=True)
        out[part] = record
    return out


# ----------------------------------------------------------------------------- DeepSEA
def build_deepsea(root: Path, *, sizes: tuple[int, int, int] = (6, 3, 4), compressed: bool = False) -> dict[str, Any]:
    """deepsea_filtered.npz: x_* (N, 1000, 4) one-hot uint8, y_* (N, 36) uint8."""
    rng = _rng(10)
    arrays = {}
    for part, n in zip(("train", "val", "test"), sizes, strict=True):
        bases = rng.integers(0, 4, size=(n, 1000))
        arrays[f"x_{part}"] = np.eye(4, dtype=np.uint8)[bases]
        arrays[f"y_{part}"] = rng.integers(0, 2, size=(n, 36)).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(root / "deepsea_filtered.npz", **arrays)
    return arrays
