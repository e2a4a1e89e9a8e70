"""ADM on the V1/V2 recordings (Semedo et al. 2019): held-out-neuron co-smoothing with time-varying delays.

Same protocol, flags and summary keys as ``demo_dlag_ssm.py``.

    uv run python examples/v1v2/demo_adm.py --split-seeds 0,1,2
"""

from mbrila.experiments.cli import run_v1v2_demo

if __name__ == "__main__":
    run_v1v2_demo("adm", __doc__)
