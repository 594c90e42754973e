"""Training: one generic loop (loop.py) and one task per component (vae.py, clip.py, dit.py),
with checkpoints, schedules/EMA, DDP, latent caching and bundle export in their own modules.
Nothing heavy is imported here: the CLI imports these modules inside its commands."""
