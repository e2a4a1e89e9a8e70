"""ADM on the headline time-varying scenario: Gaussian-bump delays (centres 0.2T and 0.8T) between 5 regions.

Fits ``mbrila.build_model("adm")`` with its defaults (initialisation and rank-1 deflation run inside ``fit``), and
a DLAG-SSM on the same data for comparison: a constant delay cannot follow δ(t), ADM should.

    uv run python examples/synthetic/demo_adm.py --seed 0 --out-dir outputs/synthetic/adm
    uv run python examples/synthetic/demo_adm.py --delay-shape sine
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("adm", __doc__)
