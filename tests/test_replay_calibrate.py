"""The simulator's calibration on held-out configs: a noise model that matches the table puts about
80 % of the configs inside their own simulated 10-90 % band; one narrower than the table's real
spread is caught."""

from __future__ import annotations

import pytest

from sweeps.replay import load_table
from sweeps.replay.calibrate import config_coverage

from replay_helpers import write_table


@pytest.mark.parametrize("design_noise", [0.0, 0.05])
def test_held_out_configs_fall_inside_their_band_only_when_the_noise_model_fits(tmp_path, design_noise):
    # every config has the same truth, so the surrogate's own error is small and the band is the
    # noise model's: a trial's sd 0.01 of the maximum, measured on the repeated configs
    table = load_table(write_table(tmp_path / "t.jsonl.gz", configs=120, repeats=5, flat=True,
                                   design_noise=design_noise))
    accuracy, noise = config_coverage(table)
    assert noise.configs == 120 and noise.low <= noise.inside / noise.configs <= noise.high
    if design_noise == 0.0:
        # calibrated: the exact interval of the share inside holds 80 %, and no bias
        assert noise.low <= 0.8 <= noise.high, noise
        assert 40 <= noise.mean_percentile <= 60
    else:
        # the unrepeated configs spread five times more than the noise model says: most fall outside
        assert noise.inside / noise.configs < 0.4, noise
        assert noise.high < 0.8
    assert accuracy.objective == "val_accuracy" and accuracy.configs == 120
