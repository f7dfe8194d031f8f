"""SageMaker on this machine (``rectrain sagemaker run-local``): the /opt/ml contract, the
checkpoint agent, several hosts."""
