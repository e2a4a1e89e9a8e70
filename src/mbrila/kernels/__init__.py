"""GP kernels: RBF (MOSE), Matérn-1/2, 3/2, 5/2, rational quadratic, the :class:`BaseKernel` extension point and its
contract check."""

from mbrila.kernels.base import BaseKernel
from mbrila.kernels.check import KernelCheckError, check_kernel
from mbrila.kernels.matern import Matern12Kernel, Matern32Kernel, Matern52Kernel
from mbrila.kernels.rational_quadratic import RationalQuadraticKernel
from mbrila.kernels.rbf import MOSEKernel, RBFKernel
from mbrila.kernels.sde import SDEForm, discretize_sde

__all__ = [
    "BaseKernel",
    "KernelCheckError",
    "MOSEKernel",
    "Matern12Kernel",
    "Matern32Kernel",
    "Matern52Kernel",
    "RBFKernel",
    "RationalQuadraticKernel",
    "SDEForm",
    "check_kernel",
    "discretize_sde",
]
