"""Host facts: GPUs, control groups, CPU and /dev/shm probes, and the SageMaker instance table."""
