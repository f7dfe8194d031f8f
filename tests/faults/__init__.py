"""The fault campaign (issue 22): rectrain's checkpoints under network, process, disk and clock
faults, judged by an S3 checker that is not rectrain (``oracle.py``). See docs/checkpoints.md,
"The fault campaign"."""
