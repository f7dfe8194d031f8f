"""Fixtures for the model tests: one real tiny training run per session, exported once.

The run trains the engine's own ``tools/train.py`` on the CPU for a few seconds (see
model_tinyrun.py); everything downstream (export, evaluate, predict, the engine's eval and
infer) reads its checkpoint. Skipped cleanly when no engine is installed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict

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


# Deployment: every preset exported with --onnx (model_presets.py, test_model_deploy.py and
# test_model_paddleocr3.py).
PRESETS = ("crnn-mv3", "svtr-tiny", "ppocrv4-mobile", "ppocrv5-mobile", "th-ppocrv5-mobile")
TRAINED = ("crnn", "ppocrv4-mobile")  # trained for real (briefly); the others: random weights
# A stand-in for pip: `python -m pip` with it first on the path records the call and fails,
# so an export that tried to install something at run time is caught.
_FAKE_PIP = ("import os, sys\n"
             "open(os.environ['RECTRAIN_TEST_PIP_CALLS'], 'a').write(' '.join(sys.argv) + '\\n')\n"
             "sys.exit('pip is not available to rectrain at run time (test stand-in)')\n")


@pytest.fixture(scope="session")
def held_out_set(tmp_path_factory) -> Dict[str, Path]:
    from .model_presets import held_out

    return held_out(tmp_path_factory.mktemp("heldout"))


@pytest.fixture(scope="session")
def deployed(tiny_run, engine, tmp_path_factory) -> Dict[str, Any]:
    """``{"models": {name: {"model": folder, "stdout": what `rectrain export --onnx` printed}},
    "pip_calls": the pip invocations seen}`` for the tiny CRNN run and every preset, exported
    by the CLI with pip unavailable (there must be no pip call)."""
    import os
    import subprocess
    import sys

    from .model_presets import THAI_DICT, preset_run

    root = tmp_path_factory.mktemp("deployed")
    fake = root / "fake-pip" / "pip"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("", encoding="utf-8")
    (fake / "__main__.py").write_text(_FAKE_PIP, encoding="utf-8")
    calls = root / "pip-calls.txt"
    env = dict(os.environ, RECTRAIN_TEST_PIP_CALLS=str(calls), PYTHONPATH=os.pathsep.join(
        [str(fake.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    data = {"labels": tiny_run["labels"], "dict": tiny_run["dict"]}
    runs = {"crnn": (tiny_run["run_dir"], "best_accuracy")}
    for preset in PRESETS:
        if preset.startswith("th-") and not THAI_DICT.is_file():
            continue  # the official Thai dictionary lives outside the repository
        trained = preset in TRAINED
        run = preset_run(root / "runs", preset, data, engine, train=trained)
        runs[preset] = (run, "latest" if trained else str(run / "random"))
    def export(name: str) -> Dict[str, Any]:
        run, checkpoint = runs[name]
        model = root / "models" / name
        proc = subprocess.run([sys.executable, "-m", "rectrain", "export", "--run-dir", str(run),
                               "--checkpoint", checkpoint, "-o", str(model), "--onnx"],
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return {"model": model, "stdout": proc.stdout}

    # Two at a time: most of an export is starting Python and Paddle in its processes.
    with ThreadPoolExecutor(max_workers=2) as pool:
        out = dict(zip(runs, pool.map(export, runs)))
    return {"models": out, "pip_calls": calls.read_text(encoding="utf-8") if calls.exists() else ""}


@pytest.fixture(scope="session")
def evaluations(deployed, held_out_set) -> Dict[str, Dict[str, Any]]:
    """name -> {"paddle": report, "onnx": report} (EvalReport.as_dict()) of `rectrain evaluate`
    (defaults: one image at a time) on the held-out set, for every deployed model."""
    from rectrain.model.evaluate import evaluate_model

    return {name: {backend: evaluate_model(str(d["model"]), str(held_out_set["labels"]),
                                           backend=backend, use_gpu=False).as_dict()
                   for backend in ("paddle", "onnx")}
            for name, d in deployed["models"].items()}
