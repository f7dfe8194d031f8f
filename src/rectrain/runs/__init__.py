"""Runs side by side: ``rectrain runs compare`` over run folders, S3 checkpoint prefixes and
SageMaker jobs. Above both the monitor and SageMaker features, which it composes."""
