"""DLAG with the exact dense-GP E-step on the V1/V2 recordings (Semedo et al. 2019): held-out-neuron co-smoothing.

Same protocol, flags and summary keys as ``demo_dlag_ssm.py`` (2 across + 2 within latents per region);
``mbrila.build_model("dlag")`` at its defaults.

    uv run python examples/v1v2/demo_dlag.py --split-seeds 0,1,2
"""

from mbrila.experiments.cli import run_v1v2_demo

if __name__ == "__main__":
    run_v1v2_demo("dlag", __doc__)
