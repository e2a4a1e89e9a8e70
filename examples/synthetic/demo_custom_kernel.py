"""Bring your own kernel: a rational-quadratic GP kernel fitted by DLAG-SSM on the headline scenario.

The kernel (``mbrila.kernels.RationalQuadraticKernel``) is written as any user kernel is: a ``BaseKernel`` subclass
with one method, ``cov(tau)``, and its timescale and shape as constrained learnable parameters (see
``src/mbrila/kernels/rational_quadratic.py``, a dozen lines). ``check_kernel`` verifies the contract first.

    uv run python examples/synthetic/demo_custom_kernel.py --out-dir outputs/synthetic/custom_kernel
"""

import mbrila
from mbrila.experiments.cli import run_synthetic_demo
from mbrila.kernels import RationalQuadraticKernel

if __name__ == "__main__":
    mbrila.check_kernel(RationalQuadraticKernel())  # symmetric, bounded, PSD Gram: safe to fit
    run_synthetic_demo("custom_kernel", __doc__)
