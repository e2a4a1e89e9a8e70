"""Synthetic multi-region scenarios with ground truth, sampled from the exact (dense) delayed GP.

>>> from mbrila.synthetic import headline_scenario
>>> data, truth = headline_scenario("dlag", n_trials=4, T=30).sample()
>>> tuple(truth.delays.shape)
(30, 5, 2)
"""

from mbrila.synthetic.delay_shapes import (
    DELAY_SHAPES,
    constant_delays,
    default_centers,
    default_widths,
    gaussian_delays,
    make_delays,
    ramp_delays,
    region_center_shifts,
    region_magnitudes,
    sigmoid_delays,
    sine_delays,
)
from mbrila.synthetic.scenario import HEADLINE_SCENARIOS, MultiRegionScenario, ScenarioTruth, headline_scenario

__all__ = [
    "DELAY_SHAPES",
    "HEADLINE_SCENARIOS",
    "MultiRegionScenario",
    "ScenarioTruth",
    "constant_delays",
    "default_centers",
    "default_widths",
    "gaussian_delays",
    "headline_scenario",
    "make_delays",
    "ramp_delays",
    "region_center_shifts",
    "region_magnitudes",
    "sigmoid_delays",
    "sine_delays",
]
