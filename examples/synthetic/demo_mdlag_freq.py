"""mDLAG on the headline 3-region scenario with the frequency-domain engine (fast-mDLAG: circulant GP prior, FFTs over time, VEMARDFreqEngine).

2 true across latents (constant delays up to 3 bins) and no within latents; the model starts with 4 latents and
automatic relevance determination must switch the 2 spurious ones off. Fits
``mbrila.build_model("mdlag", latent_spec=LatentSpec(n_across=4), engine="freq")`` with its defaults; the summary
adds the active-latent table and the ARD precisions (figure ``ard.png``).

    uv run python examples/synthetic/demo_mdlag_freq.py --seed 0 --out-dir outputs/synthetic/mdlag_freq
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("mdlag_freq", __doc__)
