"""The training runner: the PaddleOCR engine as a subprocess, streamed and parsed, with
checkpoints snapshotted and uploaded as they are saved, and resume after interruption."""
