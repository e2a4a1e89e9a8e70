"""Synthetic multi-region scenarios with ground truth (latents sampled from the exact delayed GP)."""

from mbrila.synthetic.delay_shapes import DELAY_SHAPES, make_delays
from mbrila.synthetic.scenario import MultiRegionScenario, ScenarioTruth, headline_scenario

__all__ = ["DELAY_SHAPES", "MultiRegionScenario", "ScenarioTruth", "headline_scenario", "make_delays"]
