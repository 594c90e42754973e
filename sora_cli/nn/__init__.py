"""The neural networks: video VAE (vae.py), CLIP text encoder (text.py), diffusion transformer (dit.py)."""
