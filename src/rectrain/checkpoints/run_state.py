"""The run-state file (``DIR/run-state.json``): what must survive interruptions.

It holds the run's id (resume never mixes checkpoints of two runs), the sub-epoch factor K
(resumes must use the same; checkpoint listings use it to turn engine epochs into real ones),
the segment count, and the best metric of the WHOLE run (the engine forgets it on resume:
``load_model`` sets ``acc`` to 0, so the first eval after a resume overwrites ``best_accuracy``
even when worse; rectrain keeps ``best_of_run`` (``snapshots/best_of_run.json``) and only
replaces it when a new best beats it). It lives with the checkpoints because they are read
with it; the runner writes it. It ends with a few KiB of whitespace (JSON allows it; readers
skip it): room for its final status on a full disk (:func:`rectrain.outputs.write_json_reserved`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Union

from rectrain.errors import DataError
from rectrain.outputs import write_json_reserved
from rectrain.redaction import redact_data

STATE_FILE = "run-state.json"


@dataclass
class RunState:
    run_id: str = ""
    sub_epochs: int = 1
    epochs: int = 0
    engine_epochs: int = 0
    segments: int = 0
    status: str = "new"
    global_step: int = 0
    engine_epoch: int = 0
    best_metric: Optional[float] = None  # of ``main_indicator``
    best_global_step: Optional[int] = None
    best_epoch: Optional[int] = None
    main_indicator: str = "acc"
    checkpoint_s3: Optional[str] = None
    config_fingerprint: Dict[str, Any] = field(default_factory=dict)  # training.resume_check
    plan_max_steps: Optional[int] = None  # --max-steps of the first start: resumes keep its schedule
    updated: float = 0.0
    history: list = field(default_factory=list)
    tracking: dict = field(default_factory=dict)  # rectrain.tracking: the MLflow run id, ...

    @classmethod
    def load(cls, path: Union[str, Path]) -> Optional[RunState]:
        p = Path(path)
        if not p.is_file():
            return None
        try:
            data: Any = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            data = exc
        if not isinstance(data, dict):  # damaged (cut short, edited): never read as "no run"
            what = "not JSON" if isinstance(data, Exception) else "not a JSON object"
            raise DataError(f"{p} is damaged ({what}): "
                            "it says which run this folder holds and how far it got.",
                            f"restore {p.name} from a copy (or from the checkpoint prefix in S3: "
                            "`rectrain ckpt pull`), or start over with --restart.", path=str(p))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: Union[str, Path]) -> None:
        self.updated = time.time()
        # room reserved in the file: its final status is written even on a full disk
        write_json_reserved(path, redact_data(asdict(self)))  # no credential in a state file
