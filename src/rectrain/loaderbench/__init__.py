"""The loader benchmark (``rectrain bench loader``): the engine's data pipeline measured in a
subprocess."""
