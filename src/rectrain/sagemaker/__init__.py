"""Amazon SageMaker: job requests (boto3 ``create_training_job``), the training container's
entrypoint, a local emulation of the container contract, and job monitoring."""
