"""Checkpoints: detect the engine's complete checkpoints, snapshot them, upload them with a
completion marker last, list / pull / prune them locally or in S3; and the run-state file
(``run_state``) that says which run wrote them and how to read their epochs."""
