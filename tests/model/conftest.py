"""Fixtures for the model tests: one real tiny training run per session, exported once.

The run trains the engine's own ``tools/train.py`` on the CPU for a few seconds (see
model_tinyrun.py); everything downstream (export, evaluate, predict, the engine's eval and
infer) reads its checkpoint. Skipped cleanly when no engine is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from .model_tinyrun import TEST_EPOCHS, train


@pytest.fixture(scope="session")
def engine():
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        return find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, engine) -> Dict[str, Path]:
    """{'root', 'run_dir', 'labels', 'images', 'dict'} of a finished tiny training run."""
    root = tmp_path_factory.mktemp("tiny")
    run_dir = train(root, epochs=TEST_EPOCHS)
    assert (run_dir / "checkpoints" / "best_accuracy.pdparams").is_file(), \
        (run_dir / "train.log").read_text(encoding="utf-8")[-3000:]
    return {"root": root, "run_dir": run_dir, "labels": root / "labels.txt",
            "images": root / "images", "dict": root / "dict.txt"}


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory) -> Path:
    from rectrain.model.export import export_model

    out = tmp_path_factory.mktemp("exported") / "model"
    return export_model(str(tiny_run["run_dir"]), out_dir=str(out))
