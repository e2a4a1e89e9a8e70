"""mbrila: multi-region neural latent variable models."""
