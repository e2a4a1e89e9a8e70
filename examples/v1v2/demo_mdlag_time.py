"""mDLAG (time engine) on the V1/V2 recordings (Semedo et al. 2019): held-out-neuron co-smoothing.

Same protocol, flags and summary keys as ``demo_dlag_ssm.py``; the model has 3 candidate latents and no within
latents (ARD decides where each lives), as behind the published numbers, and the summary adds each split's
active-latent table and ARD precisions. ``mbrila.build_model("mdlag", ..., engine="time")`` at its defaults.

    uv run python examples/v1v2/demo_mdlag_time.py --split-seeds 0,1,2
"""

from mbrila.experiments.cli import run_v1v2_demo

if __name__ == "__main__":
    run_v1v2_demo("mdlag_time", __doc__)
