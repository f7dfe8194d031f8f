"""The run log: metrics.jsonl records (written, read back), the live display and the curves."""
