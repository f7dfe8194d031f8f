"""The in-job program: what runs inside a SageMaker training container (``rectrain sagemaker
entrypoint``)."""
