"""One ``/opt/ml``-style path layout for local and SageMaker runs, resolved from one setting
(as the SageMaker training toolkit's ``environment.py``).

On SageMaker the root is ``/opt/ml``. Locally it is the folder the caller passes (``--ml-root``,
``RECTRAIN_ML_ROOT`` read into the settings by the entry point; ``rectrain sagemaker run-local``
uses a temp dir).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

SAGEMAKER_ROOT = "/opt/ml"


@dataclass(frozen=True)
class MLPaths:
    root: Path

    @classmethod
    def resolve(cls, root: Optional[str] = None) -> MLPaths:
        return cls(Path(root or SAGEMAKER_ROOT))

    @property
    def input_config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.input_config / "hyperparameters.json"

    @property
    def resource_config(self) -> Path:
        return self.input_config / "resourceconfig.json"

    @property
    def input_data_config(self) -> Path:
        return self.input_config / "inputdataconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def failure(self) -> Path:
        return self.output / "failure"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def code(self) -> Path:
        return self.root / "code"

    def read_json(self, path: Path) -> Dict[str, Any]:
        if not path.is_file():
            return {}
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
