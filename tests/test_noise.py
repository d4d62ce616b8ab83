"""Noise kinds, noise curves and scores, on small synthetic tensors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from sparsity import build_network, preset
from sparsity.data.base import DataSplit
from sparsity.noise import (
    MNIST_NOISE_VALUE,
    NOISE_KINDS,
    PAPER_LEVELS,
    NoiseCurve,
    get_noise,
    noise_curve,
)
from sparsity.seeding import generator


def featurize(raw: torch.Tensor) -> torch.Tensor:
    return (raw - 0.1307) / 0.3081


def images(n: int = 16, seed: int = 0) -> torch.Tensor:
    """Pixels in [0, 0.5]: none equals the mnist-pixels noise value (0.7469) or 1."""
    return torch.rand(n, 1, 28, 28, generator=generator(seed, "test-images")) * 0.5


def waves(n: int = 4, t: int = 1600) -> torch.Tensor:
    return torch.rand(n, t, generator=generator(0, "test-waves")) * 1.6 - 0.8


def raw_for(kind: str) -> torch.Tensor:
    return images() if NOISE_KINDS[kind].data == "image" else waves()


def image_split(n: int = 300, seed: int = 0) -> DataSplit:
    raw = images(n, seed)
    targets = torch.randint(0, 10, (n,), generator=generator(seed, "test-targets"))
    return DataSplit(raw, featurize(raw), targets)


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return build_network(preset("sparse-mlp"), seed=0)


def test_paper_levels_are_exact():
    assert PAPER_LEVELS == (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
    for name in ("mnist-pixels", "gsc-white", "gaussian", "salt-pepper"):
        assert get_noise(name).levels == PAPER_LEVELS
    assert get_noise("audio-snr").levels[0] == math.inf  # levels are SNRs in dB; inf is clean


@pytest.mark.parametrize("kind", sorted(NOISE_KINDS))
def test_clean_level_is_identity_and_not_in_place(kind):
    noise = get_noise(kind)
    raw = raw_for(kind)
    before = raw.clone()
    out = noise.apply(raw, noise.clean_level, generator(0, "t"))
    assert torch.equal(out, raw)
    assert out.data_ptr() != raw.data_ptr()
    noisy_level = noise.levels[-1]
    noise.apply(raw, noisy_level, generator(0, "t"))
    assert torch.equal(raw, before)  # never in place


@pytest.mark.parametrize("level", [0.05, 0.1, 0.15, 0.3, 0.35, 0.5, 1.0])
def test_mnist_pixels_changes_exactly_int_784_level_pixels(level):
    raw = images(32)
    out = get_noise("mnist-pixels").apply(raw, level, generator(1, "t"))
    changed = (out != raw).flatten(1).sum(1)
    assert torch.all(changed == int(784 * level))
    assert torch.all(out[out != raw] == torch.tensor(MNIST_NOISE_VALUE, dtype=raw.dtype))


def test_mnist_pixels_noise_sets_are_nested_across_levels():
    raw = images(8)
    sample = get_noise("mnist-pixels").sampler(raw, generator(2, "t"))
    low, high = sample(0.1) != raw, sample(0.3) != raw
    assert torch.all(high[low])


@pytest.mark.parametrize("level", [0.1, 0.4])
def test_salt_pepper_sets_fraction_to_0_or_1(level):
    raw = images(16)
    out = get_noise("salt-pepper").apply(raw, level, generator(3, "t"))
    changed = out != raw
    assert torch.all(changed.flatten(1).sum(1) == int(784 * level))
    values = out[changed]
    assert torch.all((values == 0) | (values == 1))
    assert 0.3 < values.mean().item() < 0.7  # both salt and pepper


def test_gaussian_stays_in_unit_range():
    raw = images(8)
    out = get_noise("gaussian").apply(raw, 0.5, generator(4, "t"))
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, raw)


def test_gsc_white_matches_formula():
    raw, level = waves(), 0.35
    out = get_noise("gsc-white").apply(raw, level, generator(5, "t"))
    u = torch.rand(raw.shape, generator=generator(5, "t")) * 2 - 1
    torch.testing.assert_close(out, (1 - level) * raw + level * u)
    assert u.min() < -0.9 and u.max() > 0.9


def test_audio_snr_hits_the_requested_snr():
    raw = waves()
    out = get_noise("audio-snr").apply(raw, 10.0, generator(6, "t"))
    added = out - raw
    snr = 10 * torch.log10(raw.pow(2).sum(1) / added.pow(2).sum(1))
    torch.testing.assert_close(snr, torch.full_like(snr, 10.0), atol=1e-3, rtol=0)


@pytest.mark.parametrize("kind", sorted(NOISE_KINDS))
def test_same_seed_same_noise_different_seed_different(kind):
    noise = get_noise(kind)
    raw, level = raw_for(kind), noise.levels[3]
    a = noise.apply(raw, level, generator(0, "noise", kind, 0))
    b = noise.apply(raw, level, generator(0, "noise", kind, 0))
    c = noise.apply(raw, level, generator(1, "noise", kind, 0))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sampler_matches_apply():
    noise, raw = get_noise("mnist-pixels"), images(4)
    sample = noise.sampler(raw, generator(7, "t"))
    for level in (0.05, 0.25):
        assert torch.equal(sample(level), noise.apply(raw, level, generator(7, "t")))


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match="unknown") as err:
        get_noise("pink")
    for name in NOISE_KINDS:
        assert name in str(err.value)


def test_wrong_data_type_is_a_clear_error():
    with pytest.raises(ValueError, match="audio"):
        get_noise("gsc-white").apply(images(2), 0.1, generator(0, "t"))
    with pytest.raises(ValueError, match="image"):
        get_noise("mnist-pixels").apply(waves(), 0.1, generator(0, "t"))


@pytest.mark.parametrize("kind,level", [("mnist-pixels", -0.1), ("mnist-pixels", 1.5), ("gaussian", math.nan)])
def test_bad_level_is_rejected(kind, level):
    with pytest.raises(ValueError, match="level"):
        get_noise(kind).apply(images(2), level, generator(0, "t"))


def test_noise_curve_level_0_equals_clean_accuracy(mlp):
    split = image_split()
    with torch.inference_mode():
        mlp.eval()
        clean = (mlp(split.inputs).argmax(1) == split.targets).sum().item()
    mlp.train()
    curve = noise_curve(mlp, split, featurize, "mnist-pixels", batch_size=128)
    assert curve.levels == PAPER_LEVELS
    assert curve.correct[0] == clean
    assert curve.accuracies[0] == clean / len(split)
    assert curve.total == len(split)
    assert all(0.0 <= a <= 1.0 for a in curve.accuracies)


def test_noise_curve_clean_level_does_not_featurize(mlp):
    split = image_split(20)

    def no_featurize(raw):
        raise AssertionError("featurize called at the clean level")

    curve = noise_curve(mlp, split, no_featurize, "mnist-pixels", levels=[0.0])
    assert curve.levels == (0.0,)


def test_noise_curve_is_reproducible_and_seeded(mlp):
    split = image_split(200)
    a = noise_curve(mlp, split, featurize, "salt-pepper", levels=[0.0, 0.4], seed=3, batch_size=64)
    b = noise_curve(mlp, split, featurize, "salt-pepper", levels=[0.0, 0.4], seed=3, batch_size=64)
    assert a == b


def test_noise_curve_feeds_the_seeded_noise_to_the_model():
    split = image_split(10)
    seen: list[torch.Tensor] = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros(len(x), 10)

    noise_curve(Spy(), split, featurize, "mnist-pixels", levels=[0.2], seed=5, batch_size=4)
    expected = [
        featurize(get_noise("mnist-pixels").apply(split.raw[lo : lo + 4], 0.2, generator(5, "noise", "mnist-pixels", b)))
        for b, lo in enumerate(range(0, 10, 4))
    ]
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected):
        assert torch.equal(got, want)


@pytest.mark.parametrize("training", [True, False])
def test_noise_curve_restores_training_flag(mlp, training):
    mlp.train(training)
    noise_curve(mlp, image_split(20), featurize, "mnist-pixels", levels=[0.0, 0.1])
    assert mlp.training is training
    assert all(m.training is training for m in mlp.modules())


def test_noise_score_is_sum_of_correct(mlp):
    curve = noise_curve(mlp, image_split(100), featurize, "mnist-pixels", levels=[0.0, 0.2, 0.5])
    assert curve.noise_score == sum(curve.correct)
    assert curve.mean_accuracy == pytest.approx(sum(curve.correct) / (3 * 100))


def test_noise_curve_rejects_mismatched_data(mlp):
    split = image_split(10)
    with pytest.raises(ValueError, match="audio"):
        noise_curve(mlp, split, featurize, "gsc-white")
    with pytest.raises(ValueError, match="choose one of"):
        noise_curve(mlp, split, featurize, "nope")


def test_noise_curve_on_audio():
    raw = waves(12)
    split = DataSplit(raw, raw.view(12, 1, 40, 40), torch.arange(12) % 2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(1600, 2))
    curve = noise_curve(model, split, lambda r: r.view(-1, 1, 40, 40), "audio-snr", batch_size=5)
    assert curve.levels[0] == math.inf and len(curve.levels) == len(get_noise("audio-snr").levels)


def test_noise_curve_json_round_trip():
    curve = NoiseCurve("audio-snr", (math.inf, 10.0, 0.0), (1.0, 0.5, 0.25), (4, 2, 1), 4, seed=2)
    data = json.loads(json.dumps(curve.to_dict(), allow_nan=False))
    assert data["noise_score"] == 7
    assert NoiseCurve.from_dict(data) == curve


def test_noise_curve_validates():
    with pytest.raises(ValueError, match="lengths"):
        NoiseCurve("gaussian", (0.0,), (1.0, 1.0), (1,), 1)
    with pytest.raises(ValueError, match="does not match"):
        NoiseCurve("gaussian", (0.0,), (0.9,), (1,), 2)
    with pytest.raises(ValueError, match="unknown key"):
        NoiseCurve.from_dict({**NoiseCurve("gaussian", (0.0,), (1.0,), (1,), 1).to_dict(), "extra": 1})
