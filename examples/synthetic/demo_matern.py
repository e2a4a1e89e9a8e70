"""DLAG-SSM with Matérn-5/2 kernels on data drawn from Matérn-5/2 GPs (headline timescales and delays).

Within latents use the kernel's exact state-space form (no approximation); delayed across latents use the AR(P)
lift of the same covariance.

    uv run python examples/synthetic/demo_matern.py --out-dir outputs/synthetic/matern
"""

from mbrila import Matern52Kernel
from mbrila.experiments.cli import synthetic_demo


def true_kernels() -> list[Matern52Kernel]:
    # Two across latents (4.47 and 1.41 bins), then one within latent per region (4.47 bins) for 5 regions.
    return [Matern52Kernel(4.47), Matern52Kernel(1.41)] + [Matern52Kernel(4.47) for _ in range(5)]


if __name__ == "__main__":
    synthetic_demo(
        "dlag_ssm",
        __doc__,
        model_kwargs=lambda: {"kernel_factory_across": Matern52Kernel, "kernel_factory_within": Matern52Kernel},
        scenario_kernels=true_kernels,
        label="dlag_ssm_matern52",
    )
