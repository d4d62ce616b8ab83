"""Google Speech Commands in torchaudio's folder layout, with the paper's features and augmentation.

Layout: ``<root>/SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav`` plus
``validation_list.txt`` and ``testing_list.txt``; clips listed there are validation / test, the rest
training, ``_background_noise_`` is excluded (torchaudio's SPEECHCOMMANDS rules). Words outside the
class set are "unknown"; ``_silence_`` clips are "silence", or, when there is no such folder, seeded
1 s crops of the background-noise recordings are (10% of each split, TensorFlow's default).

Decoded waveforms and log-mel features are cached in ``cache_root()/gsc/<key>.pt``; the key hashes
the selected files (with sizes and mtimes), the class set, the feature settings and CODE_VERSION.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Callable, NamedTuple

import soundfile
import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor

from ..facts import DATASETS
from ..seeding import generator
from .base import AUGMENT_CHUNK, Dataset, DatasetNotFoundError, DataSplit, cache_lock, cache_root, data_root

__all__ = ["load_gsc", "log_mel", "GSCFeaturizer", "GSCAugment", "GSCDraws", "CLASS_SETS", "FEATURES", "CODE_VERSION"]

logger = logging.getLogger(__name__)

CODE_VERSION = "gsc-1"  # bump when decoding or features change: old cache files stop matching
SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_000
PCM_SCALE = 32768.0  # int16 PCM / PCM_SCALE = the waveform in [-1, 1]
UNKNOWN, SILENCE = "unknown", "silence"
NOISE_FOLDER, SILENCE_FOLDER = "_background_noise_", "_silence_"
CLASS_SETS: dict[str, tuple[str, ...]] = dict(DATASETS["gsc"].class_sets)  # ten words + unknown + silence
# The paper's features. Slaney mel scale and norm match librosa's melspectrogram, which the
# reference code used; top_db 80 matches librosa.power_to_db(ref=np.max).
FEATURES: dict[str, object] = {
    "sample_rate": SAMPLE_RATE,
    "n_fft": 2048,
    "hop_length": 512,
    "n_mels": DATASETS["gsc"].input_shape[1],
    "mel_scale": "slaney",
    "norm": "slaney",
    "top_db": 80.0,
    "frames": DATASETS["gsc"].input_shape[2],
}
_SPLITS = ("train", "validation", "test")
_SILENCE_FRACTION = 0.1
_FEATURE_CHUNK = 256  # clips per STFT batch: bounds memory (the complex STFT is ~8 MB per 100 clips)
_SOURCE_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"


class _Item(NamedTuple):
    path: str  # relative to the dataset folder
    label: int
    start: int = -1  # >= 0: a 1 s crop of a background recording starting here
    gain: float = 1.0


# ---------------------------------------------------------------- features


_MEL: dict[str, torchaudio.transforms.MelSpectrogram] = {}


def _mel(device: torch.device) -> torchaudio.transforms.MelSpectrogram:
    key = str(device)
    if key not in _MEL:
        settings = {k: FEATURES[k] for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "mel_scale", "norm")}
        _MEL[key] = torchaudio.transforms.MelSpectrogram(**settings, power=2.0).to(device)
    return _MEL[key]


def _fix_length(raw: Tensor, length: int = CLIP_SAMPLES) -> Tensor:
    if raw.shape[-1] > length:
        return raw[..., :length]
    return F.pad(raw, (0, length - raw.shape[-1])) if raw.shape[-1] < length else raw


def _as_float(raw: Tensor) -> Tensor:
    """Float waveforms in [-1, 1]: int16 PCM is divided by 32768, floats pass as float32."""
    return raw.float() / PCM_SCALE if raw.dtype == torch.int16 else raw.float()


def log_mel(raw: Tensor) -> Tensor:
    """Waveforms (N, 16000), float in [-1, 1] or int16 PCM -> (N, 1, 32, 32) mel power in dB
    relative to each clip's maximum; converts ``_FEATURE_CHUNK`` clips at a time."""
    frames, top_db = int(FEATURES["frames"]), float(FEATURES["top_db"])
    mel, out = _mel(raw.device), []
    with torch.no_grad():
        for chunk in raw.split(_FEATURE_CHUNK):
            chunk = _fix_length(_as_float(chunk))
            db = 10.0 * torch.log10(mel(chunk).clamp_min(1e-10))
            db = (db - db.amax(dim=(-2, -1), keepdim=True)).clamp_min(-top_db)
            db = db[..., :frames]
            out.append(F.pad(db, (0, frames - db.shape[-1]), value=-top_db))
    return torch.cat(out).unsqueeze(1) if out else torch.zeros(0, 1, int(FEATURES["n_mels"]), frames, device=raw.device)


class GSCFeaturizer:
    """``featurize(raw)``: log-mel features standardized by the training split's mean and std."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = float(mean), float(std)

    def __call__(self, raw: Tensor) -> Tensor:
        return (log_mel(raw) - self.mean) / self.std

    def __repr__(self) -> str:
        return f"GSCFeaturizer(mean={self.mean:.4f}, std={self.std:.4f})"


# ---------------------------------------------------------------- augmentation


class GSCAugment:
    """The paper's training augmentation on waveforms; each transform hits a clip with probability p.

    In order: amplitude scale U(0.7, 1.1); speed and pitch change (resampling by linear
    interpolation, factor 1 / (1 + U(-0.2, 0.2))); time stretch without pitch change (a phase
    vocoder at rate 1 + U(-0.2, 0.2) on a 512-point STFT); time shift by up to ±100 ms with zero
    fill; mixing in a random 1 s crop of a background-noise recording scaled by U(0, 0.1). Lengths
    are kept at 16000 by cropping or zero padding and the result is clipped to [-1, 1]. Every random
    number comes from ``generator`` (drawn on its device), so a seed gives the same output.

    ``draw(n, generator)`` draws the numbers of n clips up front (a few scalars per clip);
    ``apply(raw, draws)`` augments a chunk of clips with their slice of them. A clip's result
    depends only on its signal and its draws, so any chunking gives the same numbers as one call.
    """

    def __init__(
        self,
        noise: list[Tensor],
        probability: float = 0.5,
        gain: tuple[float, float] = (0.7, 1.1),
        speed: float = 0.2,
        stretch: float = 0.2,
        max_shift_s: float = 0.1,
        noise_gain: float = 0.1,
    ) -> None:
        self.noise = [n.float() for n in noise if len(n) >= CLIP_SAMPLES]
        self.probability, self.gain, self.speed, self.stretch = probability, gain, speed, stretch
        self.max_shift = int(round(max_shift_s * SAMPLE_RATE))
        self.noise_gain = noise_gain
        self._noise_bank: dict[str, tuple[Tensor, Tensor]] = {}

    def __repr__(self) -> str:
        return f"GSCAugment(p={self.probability}, noise_clips={len(self.noise)})"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_noise_bank": {}}

    def _bank(self, device: torch.device) -> tuple[Tensor, Tensor]:
        key = str(device)
        if key not in self._noise_bank:
            lengths = torch.tensor([len(n) for n in self.noise], dtype=torch.long)
            bank = torch.zeros(len(self.noise), int(lengths.max()))
            for i, n in enumerate(self.noise):
                bank[i, : len(n)] = n
            self._noise_bank[key] = (bank.to(device), lengths.to(device))
        return self._noise_bank[key]

    def draw(self, n: int, generator: torch.Generator) -> "GSCDraws":
        """Every random number of ``n`` clips, drawn in one fixed order from ``generator`` (on its
        device): a clip's draws depend only on the seed, ``n`` and its position."""
        g, where = generator, generator.device

        def uniform(low: float, high: float) -> Tensor:
            return low + (high - low) * torch.rand(n, generator=g, device=where)

        apply = torch.rand(5, n, generator=g, device=where) < self.probability
        gain = uniform(*self.gain)
        speed = 1.0 / (1.0 + uniform(-self.speed, self.speed))
        rate = 1.0 + uniform(-self.stretch, self.stretch)
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (n,), generator=g, device=where)
        noise_pick, noise_pos, noise_gain = uniform(0, 1), uniform(0, 1), uniform(0, self.noise_gain)
        return GSCDraws(apply.T.contiguous(), gain, speed, rate, shift, noise_pick, noise_pos, noise_gain)

    def apply(self, raw: Tensor, draws: "GSCDraws") -> Tensor:
        """The augmented copy of ``raw`` (float in [-1, 1] or int16 PCM), clip i with ``draws[i]``."""
        if len(draws) != raw.shape[0]:
            raise ValueError(f"{len(draws)} clips of draws for {raw.shape[0]} clips of signal")
        device = raw.device
        d = draws.to(device)
        x = _fix_length(_as_float(raw))
        apply = d.apply.T
        x = x * torch.where(apply[0], d.gain, torch.ones_like(d.gain))[:, None]
        x = _on_subset(x, apply[1], lambda s, idx: _resample(s, d.speed[idx]))
        x = _on_subset(x, apply[2], lambda s, idx: _stretch(s, d.rate[idx]))
        x = _shift(x, torch.where(apply[3], d.shift, torch.zeros_like(d.shift)), self.max_shift)
        if self.noise:
            bank, lengths = self._bank(device)
            which = (d.noise_pick * len(self.noise)).long().clamp_max(len(self.noise) - 1)
            start = (d.noise_pos * (lengths[which] - CLIP_SAMPLES + 1).float()).long()
            crops = bank[which[:, None], start[:, None] + torch.arange(CLIP_SAMPLES, device=device)]
            x = x + crops * torch.where(apply[4], d.noise_gain, torch.zeros_like(d.noise_gain))[:, None]
        return x.clamp(-1.0, 1.0)

    def __call__(self, raw: Tensor, generator: torch.Generator, chunk: int = AUGMENT_CHUNK) -> Tensor:
        """The augmented copy of every clip of ``raw``, ``chunk`` clips at a time (same numbers as
        one call on all of them: the draws come first, for the whole batch)."""
        draws = self.draw(raw.shape[0], generator)
        parts = [self.apply(raw[lo : lo + chunk], draws[lo : lo + chunk]) for lo in range(0, raw.shape[0], chunk)]
        return torch.cat(parts) if parts else _fix_length(_as_float(raw))


class GSCDraws(NamedTuple):
    """The random numbers of GSCAugment for n clips (one row per clip); ``draws[lo:hi]`` slices clips."""

    apply: Tensor  # (n, 5) bool: which of the five transforms hit the clip
    gain: Tensor
    speed: Tensor
    rate: Tensor
    shift: Tensor  # int64 samples
    noise_pick: Tensor
    noise_pos: Tensor
    noise_gain: Tensor

    def __len__(self) -> int:  # type: ignore[override]
        return self.gain.shape[0]

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return GSCDraws(*(t[index] for t in self))
        return tuple.__getitem__(self, index)

    def to(self, device: torch.device) -> "GSCDraws":
        return GSCDraws(*(t.to(device) for t in self))


def _on_subset(x: Tensor, mask: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """``fn(x[idx], idx)`` on the clips where ``mask`` is set; the others pass through."""
    idx = mask.nonzero().squeeze(1)
    if len(idx) == 0:
        return x
    out = x.clone()
    out[idx] = fn(x[idx], idx)
    return out


def _resample(x: Tensor, factor: Tensor) -> Tensor:
    """``y[t] = x[t * factor]`` per clip, linear interpolation, zero past the end."""
    length = x.shape[-1]
    pos = torch.arange(length, device=x.device, dtype=x.dtype)[None, :] * factor[:, None]
    grid = torch.zeros(x.shape[0], 1, length, 2, device=x.device, dtype=x.dtype)
    grid[:, 0, :, 0] = pos * (2.0 / (length - 1)) - 1.0
    # grid_sample is one fused kernel: several times faster than floor/gather/lerp on CPU.
    out = F.grid_sample(x[:, None, None, :], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0, 0, :]


_STRETCH_FFT, _STRETCH_HOP, _STRETCH_CHUNK = 512, 128, 128


def _stretch(x: Tensor, rate: Tensor) -> Tensor:
    """Phase-vocoder time stretch with a per-clip rate (torchaudio's phase_vocoder, batched over
    rates): reads source frames at ``t * rate`` and keeps only the frames of the first second."""
    window = torch.hann_window(_STRETCH_FFT, device=x.device)
    out = []
    for chunk, r in zip(x.split(_STRETCH_CHUNK), rate.split(_STRETCH_CHUNK)):
        spec = torch.stft(chunk, _STRETCH_FFT, _STRETCH_HOP, window=window, return_complex=True)
        bins, frames = spec.shape[-2:]
        steps = torch.arange(frames, device=x.device, dtype=x.dtype)[None, :] * r[:, None]
        alpha = (steps - steps.floor())[:, None, :]
        i0 = steps.floor().long().clamp_max(frames)[:, None, :].expand(-1, bins, -1)
        # Gather magnitudes and phases rather than complex values: one abs and one angle per chunk.
        magnitude, angle = F.pad(spec.abs(), (0, 2)), F.pad(spec.angle(), (0, 2))
        m0, m1 = magnitude.gather(-1, i0), magnitude.gather(-1, i0 + 1)
        advance = torch.linspace(0, math.pi * _STRETCH_HOP, bins, device=x.device)[None, :, None]
        phase = angle.gather(-1, i0 + 1) - angle.gather(-1, i0) - advance
        phase = phase - 2 * math.pi * torch.round(phase / (2 * math.pi)) + advance
        phase = torch.cat([angle[..., :1], phase[..., :-1]], dim=-1).cumsum(-1)
        magnitude = (1 - alpha) * m0 + alpha * m1
        stretched = torch.polar(magnitude, phase)
        out.append(torch.istft(stretched, _STRETCH_FFT, _STRETCH_HOP, window=window, length=x.shape[-1]))
    return torch.cat(out)


def _shift(x: Tensor, shift: Tensor, max_shift: int) -> Tensor:
    """``y[t] = x[t - shift]`` per clip (|shift| <= max_shift), zero fill."""
    length = x.shape[-1]
    index = (max_shift - shift)[:, None] + torch.arange(length, device=x.device)[None, :]
    return F.pad(x, (max_shift, max_shift)).gather(1, index)


# ---------------------------------------------------------------- listing and decoding


def _dataset_folder(root: Path, version: str) -> Path:
    folder = root / "SpeechCommands" / f"speech_commands_{version}"
    how = (
        f"Get it with network access via torchaudio.datasets.SPEECHCOMMANDS({str(root)!r}, download=True), or "
        f"download {_SOURCE_URL} and extract it into {folder}. Set the data root with $SPARSE_SWEEPS_DATA "
        "or the `root` option."
    )
    if not folder.is_dir():
        raise DatasetNotFoundError(f"Google Speech Commands not found: no folder {folder}. {how}")
    missing = [name for name in ("validation_list.txt", "testing_list.txt") if not (folder / name).is_file()]
    if missing:
        raise DatasetNotFoundError(f"Google Speech Commands in {folder} lacks {', '.join(missing)}. {how}")
    return folder


def _read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _noise_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in (folder / NOISE_FOLDER).glob("*.wav"))


def _decode(path: Path) -> Tensor:
    """A mono int16 waveform at 16 kHz."""
    data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    wave = torch.from_numpy(data[:, 0].copy() if data.shape[1] == 1 else data.mean(axis=1).astype("int16"))
    if rate != SAMPLE_RATE:
        resampled = torchaudio.functional.resample(wave.float(), rate, SAMPLE_RATE)
        wave = resampled.round().clamp(-32768, 32767).to(torch.int16)
    return wave


def _list_items(folder: Path, classes: tuple[str, ...], split_seed: int) -> dict[str, list[_Item]]:
    """Every clip of each split with its label, in a seeded shuffled order."""
    validation, testing = _read_list(folder / "validation_list.txt"), _read_list(folder / "testing_list.txt")
    index = {name: i for i, name in enumerate(classes)}
    items: dict[str, list[_Item]] = {split: [] for split in _SPLITS}
    for path in sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*.wav")):
        word = path.split("/")[0]
        if word == NOISE_FOLDER or "_nohash_" not in path:
            continue
        label = index[SILENCE] if word == SILENCE_FOLDER else index.get(word, index[UNKNOWN])
        split = "validation" if path in validation else "test" if path in testing else "train"
        items[split].append(_Item(path, label))
    if not (folder / SILENCE_FOLDER).is_dir():
        _add_silence(folder, items, index[SILENCE], split_seed)
    for split, split_items in items.items():
        order = torch.randperm(len(split_items), generator=generator(split_seed, "gsc", "order", split))
        items[split] = [split_items[i] for i in order.tolist()]
    return items


def _add_silence(folder: Path, items: dict[str, list[_Item]], label: int, split_seed: int) -> None:
    noise = [(path, soundfile.info(str(folder / path)).frames) for path in _noise_files(folder)]
    noise = [(path, frames) for path, frames in noise if frames >= CLIP_SAMPLES]
    if not noise:
        logger.warning(
            "no %s folder and no usable %s recordings in %s: no silence clips", SILENCE_FOLDER, NOISE_FOLDER, folder
        )
        return
    for split in _SPLITS:
        count = int(round(_SILENCE_FRACTION * len(items[split])))
        g = generator(split_seed, "gsc", "silence", split)
        which = torch.randint(len(noise), (count,), generator=g).tolist()
        position, gain = torch.rand(count, generator=g).tolist(), torch.rand(count, generator=g).tolist()
        for k, pos, amp in zip(which, position, gain):
            path, frames = noise[k]
            items[split].append(_Item(path, label, int(pos * (frames - CLIP_SAMPLES + 1)), round(amp, 6)))


def _counts(items: dict[str, list[_Item]], classes: tuple[str, ...]) -> dict[str, list[int]]:
    def count(its: list[_Item]) -> list[int]:
        labels = torch.tensor([it.label for it in its], dtype=torch.long)
        return torch.bincount(labels, minlength=len(classes)).tolist()

    return {split: count(its) for split, its in items.items()}


def _report(counts: dict[str, list[int]], classes: tuple[str, ...], class_set: str, what: str) -> None:
    table = "; ".join(
        f"{split}: " + ", ".join(f"{c}={n}" for c, n in zip(classes, counts[split])) for split in _SPLITS
    )
    train = counts["train"]
    few = [c for c, n in zip(classes, train) if n < 0.25 * sum(train) / len(train)]
    empty = [f"{c} ({split})" for split in _SPLITS for c, n in zip(classes, counts[split]) if n == 0]
    if few or empty:
        logger.warning(
            "GSC class set %r, %s: few or no clips for some classes (few in train: %s; none: %s). Counts per class "
            "per split: %s", class_set, what, ", ".join(few) or "-", ", ".join(empty) or "-", table,
        )
    else:
        logger.info("GSC class set %r, %s: %s", class_set, what, table)


def _cache_key(folder: Path, items: dict[str, list[_Item]], class_set: str, classes: tuple[str, ...]) -> str:
    def stamp(path: str) -> list[int]:
        st = (folder / path).stat()
        return [st.st_size, st.st_mtime_ns]

    payload = {
        "version": CODE_VERSION,
        "features": FEATURES,
        "class_set": class_set,
        "classes": classes,
        "items": {split: [[*it, *stamp(it.path)] for it in its] for split, its in items.items()},
        "noise": [[path, *stamp(path)] for path in _noise_files(folder)],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _build(folder: Path, items: dict[str, list[_Item]]) -> dict:
    """Decode the selected clips and compute their log-mel features (the uncached path)."""
    noise_paths = _noise_files(folder)
    noise = {path: _decode(folder / path) for path in noise_paths}
    splits = {}
    for split, its in items.items():
        waves = torch.zeros(len(its), CLIP_SAMPLES, dtype=torch.int16)
        for row, it in enumerate(its):
            if it.start >= 0:
                crop = noise[it.path][it.start : it.start + CLIP_SAMPLES].float() * it.gain
                waves[row] = crop.round().clamp(-32768, 32767).to(torch.int16)
            else:
                wave = _decode(folder / it.path)[:CLIP_SAMPLES]
                waves[row, : len(wave)] = wave
        targets = torch.tensor([it.label for it in its], dtype=torch.long)
        splits[split] = {"waveforms": waves, "targets": targets, "log_mel": log_mel(waves)}
    train = splits["train"]["log_mel"]
    return {
        "splits": splits,
        "noise": [noise[p] for p in noise_paths],
        "mean": float(train.mean()),
        "std": float(train.std()) if train.numel() > 1 else 1.0,
    }


# ---------------------------------------------------------------- loader


def load_gsc(
    root: str | os.PathLike | None = None,
    *,
    class_set: str = "keywords",
    split_seed: int = 0,
    train_limit: int | None = None,
    eval_limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    version: str = "v0.02",
) -> Dataset:
    """Google Speech Commands as 12 classes: ten words of ``class_set`` plus unknown and silence.

    ``raw`` are waveforms (N, 16000) kept as int16 PCM, half the memory of float32
    (``split.signal(lo, hi)`` gives them as float in [-1, 1]); ``inputs`` are (N, 1, 32, 32)
    standardized log-mel features; ``augment`` is GSCAugment over the background-noise recordings. Splits are stored in a
    seeded shuffled order and ``train_limit`` / ``eval_limit`` keep their first clips, so only those
    are decoded. Raises DatasetNotFoundError when the dataset folder or its split lists are missing.
    """
    if class_set not in CLASS_SETS:
        raise ValueError(f"class_set={class_set!r}: choose one of {', '.join(map(repr, CLASS_SETS))}")
    for name, value in (("train_limit", train_limit), ("eval_limit", eval_limit)):
        if value is not None and value < 1:
            raise ValueError(f"{name}={value}: use None (everything) or a count >= 1")
    classes = CLASS_SETS[class_set]
    folder = _dataset_folder(data_root(root), version)
    items = _list_items(folder, classes, split_seed)
    _report(_counts(items, classes), classes, class_set, f"all clips in {folder}")
    limits = {"train": train_limit, "validation": eval_limit, "test": eval_limit}
    items = {split: its[: limits[split]] for split, its in items.items()}
    if not items["train"]:
        raise DatasetNotFoundError(f"Google Speech Commands in {folder} has no training clips")
    if train_limit is not None or eval_limit is not None:
        _report(_counts(items, classes), classes, class_set, f"limited to train {train_limit}, eval {eval_limit}")

    path = cache_root(cache_dir) / "gsc" / f"{_cache_key(folder, items, class_set, classes)}.pt"
    data = None
    if not path.is_file():
        # One process per node builds a missing entry; the others wait on the lock, then load it.
        with cache_lock(path.with_name(path.name + ".lock"), f"the GSC cache {path.name}"):
            if not path.is_file():
                logger.info("GSC cache miss: decoding %d clips into %s", sum(map(len, items.values())), path)
                data = _build(folder, items)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                torch.save(data, tmp)
                os.replace(tmp, path)  # atomic: loaders without the lock never see half a file
    if data is None:
        logger.info("GSC cache hit: %s", path)
        data = torch.load(path, weights_only=True)

    featurize = GSCFeaturizer(data["mean"], data["std"])

    def split_of(name: str) -> DataSplit:
        part = data["splits"][name]
        inputs = (part["log_mel"] - featurize.mean) / featurize.std
        return DataSplit(part["waveforms"], inputs, part["targets"], raw_scale=PCM_SCALE)

    noise = [_as_float(n) for n in data["noise"]]
    if not noise:
        logger.warning("no %s recordings in %s: augmentation will not mix in background noise", NOISE_FOLDER, folder)
    return Dataset(
        name="gsc",
        classes=classes,
        input_shape=(1, int(FEATURES["n_mels"]), int(FEATURES["frames"])),
        train=split_of("train"),
        validation=split_of("validation"),
        test=split_of("test"),
        featurize=featurize,
        augment=GSCAugment(noise),
    )
