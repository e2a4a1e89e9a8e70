"""Quickstart: smooth the shipped V1/V2 recordings with a Matérn-3/2 GP prior in exact state-space form.

Run with ``uv run python examples/quickstart.py`` (a few seconds on a CPU).
"""

import torch

import mbrila
from mbrila.inference.kalman import LGSSM, kalman_smoother

data = mbrila.data.load_data(mbrila.data.demo_data_path(), dtype=torch.float64)
print(data)  # 400 trials × 64 bins; 72 V1 and 22 V2 neurons
kernel = mbrila.Matern32Kernel(timescale=4.0)  # unit-variance GP prior for each latent, timescale in bins
mbrila.check_kernel(kernel)  # the contract every kernel (yours too) must meet
sde = kernel.double().sde_form()
A1, Q1 = mbrila.kernels.discretize_sde(sde)  # exact discretisation: no approximation
K = 5  # latents; loadings from PCA of the trial-pooled data
Y = data.y.reshape(-1, data.N)
d = Y.mean(0)
_, S, V = torch.pca_lowrank(Y - d, q=K, center=False)
C = V * S / Y.shape[0] ** 0.5  # unit-variance latents, like the GP prior
R = ((Y - d) ** 2).mean(0) - (C**2).sum(1)
with torch.no_grad():
    params = LGSSM(
        A=torch.kron(torch.eye(K).double(), A1),
        Q=torch.kron(torch.eye(K).double(), Q1),
        m0=torch.zeros(2 * K).double(),
        P0=torch.kron(torch.eye(K).double(), sde.Pinf),
        C=torch.kron(C, sde.H),
        d=d,
        R=R.clamp_min(0.05),
    )
    post = kalman_smoother(params, data.y)  # all 400 trials at once
    recon = post.mean @ params.C.T + d
resid = float(((recon - data.y) ** 2).mean() / data.y.var())
print(f"log p(y) per trial: {post.log_likelihood.mean():.1f}; smoothed latents {tuple(post.mean.shape)}")
print(f"fraction of variance left after smoothing onto {K} GP latents: {resid:.3f}")
