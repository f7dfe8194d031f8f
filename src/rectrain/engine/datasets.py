"""What rectrain knows of the engine's dataset classes."""

from __future__ import annotations

# The engine's dataset classes that read ``image_path<TAB>label`` files (``label_file_list``)
# and honour ``ratio_list``: the config builder rewrites their label files, the training
# planner their sampling ratios.
LABEL_DATASETS = frozenset({"SimpleDataSet", "MultiScaleDataSet", "TextRecDataset", "MSTextRecDataset"})
