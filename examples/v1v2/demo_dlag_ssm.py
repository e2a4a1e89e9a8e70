"""DLAG-SSM on the V1/V2 recordings (Semedo et al. 2019): held-out-neuron co-smoothing.

Splits the 400 trials 300 / 50 / 50 by ``--split-seeds``, fits 2 across + 2 within latents per region on the
training trials (keeping the EM iterate that co-smooths the validation trials best), hides 20% of each region's
neurons on the test trials and predicts them from the rest.

    uv run python examples/v1v2/demo_dlag_ssm.py                      # split 0, shipped data
    uv run python examples/v1v2/demo_dlag_ssm.py --split-seeds 0,1,2  # the published protocol
"""

from mbrila.experiments.cli import run_v1v2_demo

if __name__ == "__main__":
    run_v1v2_demo("dlag_ssm", __doc__)
