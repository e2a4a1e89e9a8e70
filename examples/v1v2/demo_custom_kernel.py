"""A user-written kernel on the V1/V2 recordings: DLAG-SSM with rational-quadratic GP latents, co-smoothing.

Same protocol, flags and summary keys as ``demo_dlag_ssm.py``; the kernel is ``mbrila.kernels.RationalQuadraticKernel``
(a ``BaseKernel`` with only ``cov``, see ``examples/synthetic/demo_custom_kernel.py``).

    uv run python examples/v1v2/demo_custom_kernel.py --split-seeds 0,1,2
"""

import mbrila
from mbrila.experiments.cli import run_v1v2_demo
from mbrila.kernels import RationalQuadraticKernel

if __name__ == "__main__":
    mbrila.check_kernel(RationalQuadraticKernel())  # symmetric, bounded, PSD Gram: safe to fit
    run_v1v2_demo("custom_kernel", __doc__)
