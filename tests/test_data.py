"""Dataset loaders on the real data under $SPARSE_SWEEPS_DATA, with a temporary cache."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from sparsity.data import (
    DataConfig,
    Dataset,
    DatasetNotFoundError,
    load_dataset,
    load_gsc,
    load_mnist,
)
from sparsity.data import gsc as gsc_module

GSC_LIMITS = {"train_limit": 240, "eval_limit": 60}


def _image_keys(raw: torch.Tensor) -> set[bytes]:
    pixels = (raw * 255).round().to(torch.uint8).reshape(len(raw), -1).numpy()
    return {row.tobytes() for row in pixels}


@pytest.fixture(scope="module")
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mnist-cache")


@pytest.fixture(scope="module")
def mnist(data_dir: Path, mnist_cache: Path) -> Dataset:
    return load_mnist(data_dir, cache_dir=mnist_cache)


@pytest.fixture(scope="module")
def gsc_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gsc-cache")


@pytest.fixture(scope="module")
def gsc(data_dir: Path, gsc_cache: Path) -> Dataset:
    return load_gsc(data_dir, cache_dir=gsc_cache, **GSC_LIMITS)


# ---------------------------------------------------------------- MNIST


def test_mnist_shapes_dtypes_and_normalization(mnist: Dataset) -> None:
    assert (len(mnist.train), len(mnist.validation), len(mnist.test)) == (55_000, 5_000, 10_000)
    assert mnist.num_classes == 10 and mnist.input_shape == (1, 28, 28) and mnist.augment is None
    for split in (mnist.train, mnist.validation, mnist.test):
        assert split.raw.dtype == torch.float32 and split.raw.shape[1:] == (1, 28, 28)
        assert split.raw.min() >= 0 and split.raw.max() <= 1
        assert split.targets.dtype == torch.int64 and set(split.targets.unique().tolist()) == set(range(10))
    raw = mnist.test.raw[:500]
    assert torch.allclose(mnist.test.inputs[:500], (raw - 0.1307) / 0.3081)
    assert torch.equal(mnist.featurize(raw), mnist.test.inputs[:500])
    assert abs(mnist.train.inputs.mean().item()) < 0.05 and abs(mnist.train.inputs.std().item() - 1) < 0.05


def test_mnist_validation_is_a_disjoint_hold_out(mnist: Dataset) -> None:
    train, validation = _image_keys(mnist.train.raw), _image_keys(mnist.validation.raw)
    assert len(train) + len(validation) == 60_000  # the MNIST training images are all distinct
    assert not train & validation


def test_mnist_split_is_seeded_and_limits_take_the_head(data_dir: Path, mnist: Dataset, mnist_cache: Path) -> None:
    same = load_mnist(data_dir, cache_dir=mnist_cache, train_limit=10, eval_limit=100)
    other = load_mnist(data_dir, cache_dir=mnist_cache, train_limit=10, eval_limit=100, split_seed=1)
    assert (len(same.train), len(same.validation), len(same.test)) == (10, 100, 100)
    assert torch.equal(same.validation.raw, mnist.validation.raw[:100])
    assert torch.equal(same.train.targets, mnist.train.targets[:10])
    assert not torch.equal(other.validation.raw, same.validation.raw)
    smaller = load_mnist(data_dir, cache_dir=mnist_cache, validation_size=100, eval_limit=5)
    assert len(smaller.train) == 59_900 and len(smaller.validation) == 5


def test_mnist_paper_protocol_trains_on_all_60000(data_dir: Path, mnist: Dataset, mnist_cache: Path) -> None:
    paper = load_mnist(data_dir, cache_dir=mnist_cache, validation_size=0)
    assert (len(paper.train), len(paper.validation), len(paper.test)) == (60_000, 0, 10_000)
    both = torch.cat([mnist.train.raw, mnist.validation.raw])
    assert _image_keys(paper.train.raw) == _image_keys(both)  # the same images, the 5,000 held out included
    assert torch.equal(paper.test.raw, mnist.test.raw)
    assert not DataConfig("mnist", validation_size=0).has_validation and DataConfig("mnist").has_validation


def test_mnist_extracts_into_the_cache_and_uses_an_extracted_root(
    mnist: Dataset, mnist_cache: Path, tmp_path: Path
) -> None:
    extracted = {p.name for p in (mnist_cache / "MNIST" / "raw").iterdir() if not p.name.endswith(".gz")}
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    assert extracted == set(names)
    # An already-extracted root is read in place: nothing lands in the (empty) cache.
    fresh_cache = tmp_path / "unused"
    again = load_mnist(mnist_cache, cache_dir=fresh_cache, train_limit=5, eval_limit=5)
    assert torch.equal(again.test.raw, mnist.test.raw[:5])
    assert not fresh_cache.exists()


def test_mnist_reads_the_bytes_torchvision_reads(mnist_cache: Path, mnist: Dataset, tmp_path: Path) -> None:
    import torchvision

    from sparsity.data.mnist import read_idx

    for train in (True, False):
        reference = torchvision.datasets.MNIST(str(mnist_cache), train=train, download=False)
        prefix = "train" if train else "t10k"
        raw = mnist_cache / "MNIST" / "raw"
        assert torch.equal(read_idx(raw / f"{prefix}-images-idx3-ubyte"), reference.data)
        assert torch.equal(read_idx(raw / f"{prefix}-labels-idx1-ubyte"), reference.targets.to(torch.uint8))
    truncated = tmp_path / "short"
    truncated.write_bytes((raw / "t10k-labels-idx1-ubyte").read_bytes()[:-3])
    with pytest.raises(DatasetNotFoundError, match="truncated"):
        read_idx(truncated)


def test_loading_extracted_mnist_does_not_import_torchvision(mnist_cache: Path, mnist: Dataset) -> None:
    # torchvision's import costs seconds in every fresh sweep worker: it is for extraction only.
    import subprocess
    import sys

    code = (f"import sys; from sparsity.data import load_mnist; load_mnist({str(mnist_cache)!r}, train_limit=5, "
            f"eval_limit=5); print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_missing_datasets_name_the_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(empty, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert str(empty / "MNIST" / "raw") in message and "train-images-idx3-ubyte.gz" in message and "download" in message
    with pytest.raises(DatasetNotFoundError) as error:
        load_gsc(empty, cache_dir=tmp_path / "cache")
    assert str(empty / "SpeechCommands" / "speech_commands_v0.02") in str(error.value)


# ---------------------------------------------------------------- GSC


def test_gsc_shapes_and_features(gsc: Dataset) -> None:
    assert (len(gsc.train), len(gsc.validation), len(gsc.test)) == (240, 60, 60)
    assert gsc.input_shape == (1, 32, 32)
    for split in (gsc.train, gsc.validation, gsc.test):
        # waveforms stay 16-bit PCM (half of float32); signal() gives them in [-1, 1]
        assert split.raw.dtype == torch.int16 and split.raw.shape[1:] == (16_000,)
        signal = split.signal()
        assert signal.dtype == torch.float32 and signal.abs().max() <= 1
        assert torch.equal(split.signal(3, 5), split.raw[3:5].double().div(32768).float())
        assert split.inputs.shape[1:] == (1, 32, 32) and torch.isfinite(split.inputs).all()
    assert torch.allclose(gsc.featurize(gsc.test.signal(0, 16)), gsc.test.inputs[:16], atol=1e-4)
    assert torch.equal(gsc.featurize(gsc.test.raw[:16]), gsc.featurize(gsc.test.signal(0, 16)))
    # standardized with the training split's statistics
    assert abs(gsc.train.inputs.mean().item()) < 1e-3 and abs(gsc.train.inputs.std().item() - 1) < 1e-3
    # dB relative to each clip's maximum, floored at -80 dB
    log_mel = gsc_module.log_mel(gsc.test.raw[:16])
    assert torch.allclose(log_mel.amax(dim=(1, 2, 3)), torch.zeros(16)) and log_mel.min() >= -80


def test_gsc_keyword_classes(gsc: Dataset) -> None:
    assert gsc.classes[:10] == ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
    assert gsc.classes[10:] == ("unknown", "silence") and gsc.num_classes == 12
    for split in (gsc.train, gsc.validation, gsc.test):
        assert split.targets.dtype == torch.int64 and 0 <= split.targets.min() and split.targets.max() < 12
    present = set(gsc.train.targets.tolist())
    assert {10, 11} <= present and len(present) == 12


def test_gsc_digit_set_warns_about_its_few_clips(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sparsity.data.gsc"):
        digits = load_gsc(data_dir, class_set="digits", cache_dir=tmp_path, train_limit=30, eval_limit=10)
    assert digits.classes[0] == "zero" and digits.classes[10:] == ("unknown", "silence")
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "'digits'" in warning and "zero=" in warning and "test:" in warning


def test_gsc_without_silence_folder_crops_background_noise(data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / "SpeechCommands" / "speech_commands_v0.02"
    folder = tmp_path / "root" / "SpeechCommands" / "speech_commands_v0.02"
    folder.mkdir(parents=True)
    for name in ("stop", "cat", "_background_noise_", "validation_list.txt", "testing_list.txt"):
        (folder / name).symlink_to(source / name)
    loaded = [load_gsc(tmp_path / "root", cache_dir=tmp_path / "cache", split_seed=s) for s in (0, 0)]
    for split in ("train", "validation", "test"):
        targets = getattr(loaded[0], split).targets
        silence = int((targets == 11).sum())
        assert silence == round(0.1 * int((targets != 11).sum())) and silence > 0
        assert set(targets.tolist()) == {8, 10, 11}  # stop, unknown (cat), silence
        assert torch.equal(getattr(loaded[0], split).raw, getattr(loaded[1], split).raw)
    assert loaded[0].train.signal()[loaded[0].train.targets == 11].abs().amax(dim=1).min() > 0


def test_gsc_second_load_hits_the_cache(
    data_dir: Path, gsc: Dataset, gsc_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert len(list((gsc_cache / "gsc").glob("*.pt"))) == 1

    def fail(*args: object) -> None:
        raise AssertionError("a cached load decoded audio or computed features")

    monkeypatch.setattr(gsc_module, "_decode", fail)
    monkeypatch.setattr(gsc_module, "log_mel", fail)
    with caplog.at_level(logging.INFO, logger="sparsity.data.gsc"):
        again = load_gsc(data_dir, cache_dir=gsc_cache, **GSC_LIMITS)
    assert any("cache hit" in r.getMessage() for r in caplog.records)
    assert torch.equal(again.train.raw, gsc.train.raw) and torch.equal(again.test.inputs, gsc.test.inputs)


def test_gsc_augmentation(gsc: Dataset) -> None:
    raw = gsc.train.signal(0, 64)
    before = raw.clone()
    first = gsc.augment(raw, torch.Generator().manual_seed(3))
    second = gsc.augment(raw, torch.Generator().manual_seed(3))
    other = gsc.augment(raw, torch.Generator().manual_seed(4))
    assert torch.equal(raw, before)  # not in place
    assert first.shape == raw.shape and first.dtype == torch.float32 and first.abs().max() <= 1
    assert torch.equal(first, second) and not torch.equal(first, other)
    changed = (first - raw).abs().amax(dim=1) > 1e-4
    assert changed.float().mean() > 0.8  # 1 - 0.5**5 of the clips get at least one transform
    assert gsc.featurize(first).shape == (64, 1, 32, 32)


def _augment_whole_split_in_one_call(augment: gsc_module.GSCAugment, raw: torch.Tensor, g: torch.Generator):
    """The augmentation as it ran before chunking: every random number drawn in one fixed order,
    then each transform applied to the whole batch at once (kept here as the reference)."""
    n = raw.shape[0]
    x = raw.float()

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=g)

    apply = torch.rand(5, n, generator=g) < augment.probability
    gain = uniform(*augment.gain)
    speed = 1.0 / (1.0 + uniform(-augment.speed, augment.speed))
    rate = 1.0 + uniform(-augment.stretch, augment.stretch)
    shift = torch.randint(-augment.max_shift, augment.max_shift + 1, (n,), generator=g)
    noise_pick, noise_pos, noise_gain = uniform(0, 1), uniform(0, 1), uniform(0, augment.noise_gain)
    x = x * torch.where(apply[0], gain, torch.ones_like(gain))[:, None]
    x = gsc_module._on_subset(x, apply[1], lambda s, idx: gsc_module._resample(s, speed[idx]))
    x = gsc_module._on_subset(x, apply[2], lambda s, idx: gsc_module._stretch(s, rate[idx]))
    x = gsc_module._shift(x, torch.where(apply[3], shift, torch.zeros_like(shift)), augment.max_shift)
    bank, lengths = augment._bank(x.device)
    which = (noise_pick * len(augment.noise)).long().clamp_max(len(augment.noise) - 1)
    start = (noise_pos * (lengths[which] - 16_000 + 1).float()).long()
    crops = bank[which[:, None], start[:, None] + torch.arange(16_000)]
    return (x + crops * torch.where(apply[4], noise_gain, torch.zeros_like(noise_gain))[:, None]).clamp(-1.0, 1.0)


def test_chunked_augmentation_equals_the_whole_split_in_one_call_to_the_bit(gsc: Dataset) -> None:
    """Draws for the whole split first, then chunks: any chunk size gives the one-call numbers."""
    signal = gsc.train.signal()
    expected = _augment_whole_split_in_one_call(gsc.augment, signal, torch.Generator().manual_seed(11))
    assert not torch.equal(expected, signal.clamp(-1, 1))  # the transforms did something
    for chunk in (1000, 64, 37):
        got = gsc.augment(signal, torch.Generator().manual_seed(11), chunk=chunk)
        assert torch.equal(got, expected), chunk
    # int16 PCM in gives the same as its float signal
    assert torch.equal(gsc.augment(gsc.train.raw, torch.Generator().manual_seed(11), chunk=37), expected)
    # the training loop's chunked inputs: featurized chunk by chunk into one tensor, same numbers
    features = gsc.featurize(expected)
    for chunk in (1000, 37):
        assert torch.equal(gsc.augmented_inputs(torch.Generator().manual_seed(11), chunk=chunk), features)
    # a clip's draws are its own: the draws of a slice are the slice of the draws
    draws = gsc.augment.draw(len(signal), torch.Generator().manual_seed(11))
    assert len(draws) == len(signal) and len(draws[10:20]) == 10
    assert torch.equal(gsc.augment.apply(signal[10:20], draws[10:20]), expected[10:20])
    with pytest.raises(ValueError, match="5 clips of draws for 10 clips"):
        gsc.augment.apply(signal[:10], draws[:5])


_LOADER = """
import logging, sys, torch
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from sparsity.data import load_gsc
data = load_gsc(sys.argv[1], cache_dir=sys.argv[2], train_limit=240, eval_limit=60)
torch.save({"raw": data.train.raw, "inputs": data.test.inputs}, sys.argv[3])
"""


def test_two_processes_missing_the_cache_build_it_once(data_dir: Path, gsc: Dataset, gsc_cache: Path,
                                                        tmp_path: Path) -> None:
    """The test holds the entry's lock, starts two loaders on an empty cache, sees both wait, lets
    go: exactly one builds, the other loads what it built."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    (entry,) = (gsc_cache / "gsc").glob("*.pt")  # the same clips give the same key in any cache
    cache = tmp_path / "cache"
    lock = cache / "gsc" / f"{entry.name}.lock"
    lock.parent.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        logs = [tmp_path / f"loader{i}.log" for i in range(2)]
        procs = [
            subprocess.Popen([sys.executable, "-c", _LOADER, str(data_dir), str(cache), str(tmp_path / f"out{i}.pt")],
                             stderr=open(logs[i], "w"), env=env)
            for i in range(2)
        ]
        deadline = time.monotonic() + 120
        while not all("waiting for another process" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            time.sleep(0.2)
        assert not list(cache.glob("gsc/*.pt"))  # nobody built while the lock was held
        fcntl.flock(held, fcntl.LOCK_UN)
    assert [p.wait(timeout=300) for p in procs] == [0, 0], [log.read_text() for log in logs]
    texts = [log.read_text() for log in logs]
    assert sorted("cache miss" in t for t in texts) == [False, True]
    assert sorted("cache hit" in t for t in texts) == [False, True]
    assert [p.name for p in (cache / "gsc").iterdir() if not p.name.endswith(".lock")] == [entry.name]
    outs = [torch.load(tmp_path / f"out{i}.pt") for i in range(2)]
    assert torch.equal(outs[0]["raw"], gsc.train.raw) and torch.equal(outs[1]["raw"], gsc.train.raw)
    assert torch.equal(outs[0]["inputs"], outs[1]["inputs"])


def test_gsc_speed_changes_pitch_and_stretch_keeps_it() -> None:
    t = torch.arange(16_000) / 16_000
    tone = (0.5 * torch.sin(2 * math.pi * 440 * t) * (t < 0.5)).repeat(2, 1)
    factors = torch.tensor([1.25, 0.8])

    def peak_hz(x: torch.Tensor) -> list[int]:
        return torch.fft.rfft(x).abs().argmax(dim=-1).tolist()  # 1 Hz bins for 1 s

    def duration_s(x: torch.Tensor) -> list[float]:
        return [(row.abs() > 0.1).nonzero().max().item() / 16_000 for row in x]

    assert peak_hz(gsc_module._resample(tone, factors)) == [550, 352]
    stretched = gsc_module._stretch(tone, factors)
    assert peak_hz(stretched) == [440, 440]
    assert duration_s(stretched) == pytest.approx([0.4, 0.625], abs=0.015)
    shifted = gsc_module._shift(tone, torch.tensor([1600, -1600]), 1600)
    assert torch.equal(shifted[0, 1600:], tone[0, :-1600]) and not shifted[0, :1600].any()
    assert torch.equal(shifted[1, :-1600], tone[1, 1600:]) and not shifted[1, -1600:].any()


# ---------------------------------------------------------------- DataConfig


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "cifar"}, "name"),
        ({"name": "gsc", "class_set": "animals"}, "class_set"),
        ({"name": "mnist", "validation_size": -1}, "validation_size"),
        ({"name": "mnist", "validation_size": 60_000}, "validation_size"),
        ({"name": "mnist", "split_seed": "zero"}, "split_seed"),
        ({"name": "mnist", "train_limit": 0}, "train_limit"),
        ({"name": "mnist", "eval_limit": True}, "eval_limit"),
        ({"name": "mnist", "root": 3}, "root"),
        ({"name": "mnist", "cache_dir": 3}, "cache_dir"),
        ({"name": "mnist", "root": None, "eval_limit": 2.5}, "eval_limit"),
        ({"name": "mnist", "batch_size": 3}, "batch_size"),
    ],
)
def test_data_config_errors_name_the_field(options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DataConfig.from_dict(options)


def test_data_config_loads_from_the_environment(
    data_dir: Path, gsc: Dataset, gsc_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARSE_SWEEPS_DATA", str(data_dir))
    monkeypatch.setenv("SPARSE_SWEEPS_CACHE", str(gsc_cache))
    config = DataConfig.from_dict({"name": "gsc", **GSC_LIMITS})
    assert DataConfig.from_dict(config.to_dict()) == config
    loaded = load_dataset(config)
    assert loaded.name == "gsc" and torch.equal(loaded.validation.targets, gsc.validation.targets)
    assert len(list((gsc_cache / "gsc").glob("*.pt"))) == 1  # read through the same cache entry
    mnist = load_dataset(DataConfig("mnist", train_limit=3, eval_limit=3))
    assert mnist.name == "mnist" and len(mnist.train) == 3


def test_data_config_stores_paths_as_strings(tmp_path: Path) -> None:
    config = DataConfig("gsc", root=tmp_path, cache_dir=tmp_path / "cache")  # type: ignore[arg-type]
    assert config.root == str(tmp_path) and config.cache_dir == str(tmp_path / "cache")


def test_noise_curve_on_int16_waveforms_equals_the_one_on_their_float_signal(gsc: Dataset) -> None:
    from sparsity import preset
    from sparsity.data import DataSplit
    from sparsity.network import build_network
    from sparsity.noise import noise_curve

    model = build_network(preset("sparse-cnn2", "gsc"), seed=0)
    split = gsc.validation
    as_float = DataSplit(split.signal(), split.inputs, split.targets)
    assert split.raw.dtype == torch.int16 and as_float.raw.dtype == torch.float32
    curves = [noise_curve(model, s, gsc.featurize, "gsc-white", levels=(0.0, 0.3, 0.6), batch_size=25)
              for s in (split, as_float)]
    assert curves[0] == curves[1]
    with torch.no_grad():
        clean = int((model.eval()(split.inputs).argmax(1) == split.targets).sum())
    assert curves[0].correct[0] == clean and curves[0].total == len(split)
