"""FSD50K audio features without torchaudio/librosa: log-mel spectrograms and the benchmark's spectrogram transforms.

`log_mel` reproduces the original AudioParser('melspectrogram'):
  torchaudio.transforms.MelSpectrogram(sample_rate=22050, n_fft=1920, win_length=661, hop_length=220,
  n_mels=96) -> librosa.power_to_db -> + 75 -> minus the mean.
torchaudio is not installable beside nb360's torch, so the transform is rebuilt from its definition:
the same torch.stft call (periodic Hann window of 661 centred in 1920, center=True, reflect padding,
power 2) and the same float32 HTK triangular filterbank (melscale_fbanks, f_min 0, f_max 11025,
norm None). Results can differ from torchaudio's in the last float32 bits where the order of
operations differs; librosa.power_to_db (ref 1, amin 1e-10, top_db 80) is reproduced in numpy.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
import torch

SAMPLE_RATE = 22050
N_FFT = 96 * 20  # 1920
WIN_LENGTH = int(SAMPLE_RATE * 0.03)  # 661
HOP_LENGTH = int(SAMPLE_RATE * 0.01)  # 220
N_MELS = 96
MIN_DURATION = 1.0  # seconds; shorter clips are tiled (load_audio's min_duration)
FRAMES = 101  # frames of a 1-s chunk; the transforms pad/crop to it
DB_OFFSET = 150 / 2  # AudioParser's top_db=150 halved
AMIN, TOP_DB = 1e-10, 80.0  # librosa.power_to_db defaults


def _hz_to_mel(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


@lru_cache(maxsize=4)
def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE,
                   f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """(n_freqs, n_mels) float32 HTK triangular filters without normalization (torchaudio melscale_fbanks)."""
    f_max = float(sample_rate // 2) if f_max is None else f_max
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -1.0 * slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)


@lru_cache(maxsize=2)
def _window(win_length: int = WIN_LENGTH) -> torch.Tensor:
    return torch.hann_window(win_length)  # periodic, as torchaudio's default window_fn


def power_mel(signal: np.ndarray) -> torch.Tensor:
    """(96, frames) float32 power mel spectrogram of a mono 22,050 Hz signal (torchaudio MelSpectrogram)."""
    x = torch.as_tensor(np.ascontiguousarray(signal, dtype=np.float32))
    spec = torch.stft(x, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=_window(),
                      center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    power = spec.abs().pow(2.0)
    return torch.matmul(power.transpose(-1, -2), mel_filterbank()).transpose(-1, -2)


def power_to_db(spec: np.ndarray, *, amin: float = AMIN, top_db: float | None = TOP_DB) -> np.ndarray:
    """librosa.power_to_db(spec) with ref=1.0: 10 log10(max(amin, S)), floored at max - top_db."""
    log_spec = 10.0 * np.log10(np.maximum(amin, spec))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def log_mel(signal: np.ndarray) -> np.ndarray:
    """The benchmark's (96, frames) float32 feature: power_to_db(mel) + 75, minus its mean."""
    feature = power_to_db(power_mel(signal).numpy()).astype(np.float32)
    feature += DB_OFFSET
    feature -= feature.mean()
    return feature


def read_wav(payload: bytes, *, name: str = "audio") -> np.ndarray:
    """A mono float32 signal at 22,050 Hz from WAV bytes, at least 1 s long (shorter clips tiled as load_audio).

    Integer PCM is scaled as soundfile does (int16 / 2**15, int32 / 2**31, uint8 (x - 128) / 128);
    multi-channel audio is averaged to mono (the released chunks are mono).
    """
    from scipy.io import wavfile

    try:
        rate, samples = wavfile.read(io.BytesIO(payload))
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{name} is not a readable WAV file ({exc})") from exc
    if rate != SAMPLE_RATE:
        raise ValueError(f"{name} is sampled at {rate} Hz; the FSD50K chunks are {SAMPLE_RATE} Hz")
    if samples.dtype == np.int16:
        x = samples.astype(np.float32) / 2 ** 15
    elif samples.dtype == np.int32:
        x = samples.astype(np.float32) / 2 ** 31
    elif samples.dtype == np.uint8:
        x = (samples.astype(np.float32) - 128.0) / 128.0
    else:
        x = samples.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if len(x) == 0:
        raise ValueError(f"{name} holds no samples")
    min_samples = int(SAMPLE_RATE * MIN_DURATION)
    if len(x) < min_samples:
        x = np.tile(x, min_samples // len(x) + 1)[:min_samples]
    return x


# ------------------------------------------------------------------ spectrogram transforms (numpy, (F, T))
def pad_to_size(spec: np.ndarray, size: int, mode: str = "constant") -> np.ndarray:
    """PadToSize: pad the time axis to `size` (half before, rest after) with the minimum, or by wrapping."""
    if spec.shape[1] >= size:
        return spec
    padding = size - spec.shape[1]
    widths = ((0, 0), (padding // 2, padding - padding // 2))
    if mode == "wrap":
        return np.pad(spec, widths, mode="wrap")
    return np.pad(spec, widths, mode="constant", constant_values=spec.min())


def spec_augment(spec: np.ndarray, generator: torch.Generator | None = None, *, num_mask: int = 2,
                 freq_masking: float = 0.15, time_masking: float = 0.20) -> np.ndarray:
    """SpecAugment as the original: 1..num_mask rounds, each masking a frequency and a time band with the minimum."""
    spec = spec.copy()
    value = spec.min()
    n_freqs, n_frames = spec.shape
    rounds = int(torch.randint(1, num_mask + 1, (), generator=generator))
    for _ in range(rounds):
        n_f = int(float(torch.rand((), generator=generator)) * freq_masking * n_freqs)
        f0 = int(float(torch.rand((), generator=generator)) * (n_freqs - n_f))
        spec[f0:f0 + n_f, :] = value
        n_t = int(float(torch.rand((), generator=generator)) * time_masking * n_frames)
        t0 = int(float(torch.rand((), generator=generator)) * (n_frames - n_t))
        spec[:, t0:t0 + n_t] = value
    return spec


def random_crop(spec: np.ndarray, size: int, generator: torch.Generator | None = None) -> np.ndarray:
    """RandomCrop on the time axis: a uniformly placed window of `size` frames (both ends inclusive)."""
    start = int(torch.randint(0, spec.shape[1] - size + 1, (), generator=generator))
    return spec[:, start:start + size]


def train_transform(spec: np.ndarray, generator: torch.Generator | None = None, size: int = FRAMES) -> np.ndarray:
    """get_transforms_fsd_chunks(train=True): wrap-or-constant pad, SpecAugment with p=0.5, random crop."""
    mode = "wrap" if float(torch.rand((), generator=generator)) < 0.5 else "constant"
    spec = pad_to_size(spec, size, mode)
    if float(torch.rand((), generator=generator)) < 0.5:
        spec = spec_augment(spec, generator)
    return random_crop(spec, size, generator)


def eval_transform(spec: np.ndarray, size: int = FRAMES) -> np.ndarray:
    """get_transforms_fsd_chunks(train=False): constant (minimum) padding to `size` frames."""
    return pad_to_size(spec, size)
