"""Checkpoints: detect the engine's complete checkpoints, snapshot them, upload them with a
completion marker last, list / pull / prune them locally or in S3."""
