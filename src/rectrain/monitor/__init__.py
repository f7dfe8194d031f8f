"""Follow a training run (local folder or S3) and draw its curves."""

from rectrain.monitor.follow import monitor_recognition_training_progress, register_job_source, summarize

__all__ = ["monitor_recognition_training_progress", "register_job_source", "summarize"]
