"""Free linear dynamical system baseline on the headline synthetic scenario (shared and private LDS latents).

uv run python examples/synthetic/demo_lds.py --out-dir outputs/synthetic/lds
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("lds", __doc__)
