"""Small dense linear-algebra helpers shared by the inference code.

Every helper works on batched ``(..., D, D)`` tensors, keeps the input's dtype and device, and never
modifies its arguments.
"""

from __future__ import annotations

import torch
from torch import Tensor


def symmetrize(M: Tensor) -> Tensor:
    """Return ``(M + Mᵀ) / 2`` over the last two dimensions (removes round-off asymmetry)."""
    return 0.5 * (M + M.mT)


def eye_like(M: Tensor) -> Tensor:
    """Identity matrix of size ``M.shape[-1]`` with ``M``'s dtype and device."""
    return torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)


def mv(M: Tensor, v: Tensor) -> Tensor:
    """Batched matrix-vector product ``M v`` with broadcasting: ``(..., D, E) × (..., E) → (..., D)``."""
    if M.ndim == 2:
        # One shared matrix: a single GEMM over all batch rows beats a batch of tiny products.
        return v @ M.mT
    return (M @ v.unsqueeze(-1)).squeeze(-1)


def relative_jitter(M: Tensor) -> Tensor:
    """A diagonal jitter scale for PSD checks: ``sqrt(eps) · max(1, max |diag M|)``, per batch element.

    Scaling with the dtype's machine epsilon keeps float32 and float64 checks equally strict.
    """
    eps = torch.finfo(M.dtype).eps
    scale = M.diagonal(dim1=-2, dim2=-1).abs().amax(dim=-1).clamp_min(1.0)
    return (eps**0.5) * scale


def is_psd(M: Tensor, *, sym_tol: float | None = None) -> tuple[bool, str]:
    """Check that every matrix in ``M (..., D, D)`` is symmetric positive semi-definite.

    Symmetry is tested to a dtype-scaled tolerance; semi-definiteness by a Cholesky factorisation of
    ``M + jitter·I``, which succeeds for singular PSD matrices and fails for any eigenvalue clearly below zero.

    Returns
    -------
    ok, reason : bool, str
        ``reason`` says what failed (empty when ``ok``).
    """
    if M.shape[-1] == 0 or M.numel() == 0:
        return True, ""
    tol = sym_tol if sym_tol is not None else 100 * torch.finfo(M.dtype).eps ** 0.5
    scale = M.abs().amax().clamp_min(1e-300)
    asym = (M - M.mT).abs().amax() / scale
    if bool(asym > tol):
        return False, f"not symmetric (max relative asymmetry {float(asym):.2e})"
    jitter = relative_jitter(M)[..., None, None] * eye_like(M)
    _, info = torch.linalg.cholesky_ex(symmetrize(M) + jitter)
    if bool((info != 0).any()):
        n_bad = int((info != 0).sum())
        eig_min = float(torch.linalg.eigvalsh(symmetrize(M)).amin())
        return (
            False,
            f"not positive semi-definite ({n_bad} failing matrices, smallest eigenvalue {eig_min:.3e})",
        )
    return True, ""
