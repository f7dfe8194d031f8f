"""PaddleOCR 3.x (paddleocr 3.7.0, which runs PaddleX's TextRecognition predictor) loads every
exported model as is, with the exact line `rectrain export` printed and the model name of its
inference.yml, and reads each held-out image as `rectrain evaluate` does: same text, same score
(image by image), with Paddle Inference and with ONNX Runtime. Runs in a separate environment
(tests/paddleocr3_env.py, created once and cached); no mock of PaddleX.

The figures (images compared, readings that differ, largest score difference) are written to
``paddleocr3-parity.json`` in the test's temp folder and printed with ``-s``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from .conftest import PRESETS

pytestmark = [pytest.mark.slow, pytest.mark.index,
              pytest.mark.timeout(3600)]  # the first run creates the environment (minutes)

MODELS = ("crnn",) + PRESETS
# Largest score difference accepted between PaddleOCR 3.x and `rectrain evaluate` on the same
# runtime (both Paddle Inference with oneDNN and 10 CPU threads, or both ONNX Runtime): the
# same tensor through the same program. Observed 0, and 3e-8 for svtr-tiny (PaddleX's fixed
# resize normalises in float64 before the cast to float32).
SCORE_TOLERANCE = 1e-6


def _line(stdout: str, start: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, f"expected one printed line starting with {start!r}:\n{stdout}"
    return lines[0]


@pytest.fixture(scope="module")
def paddleocr3(deployed, held_out_set, paddleocr3_python, tmp_path_factory) -> Dict[str, Any]:
    """What PaddleOCR 3.x read: one run of tests/paddleocr3_read.py over every model, with
    its Paddle engine and with engine="onnxruntime"."""
    import paddleocr3_env

    tmp = tmp_path_factory.mktemp("paddleocr3")
    images = [str((held_out_set["labels"].parent / line.split("\t")[0]).resolve())
              for line in held_out_set["labels"].read_text(encoding="utf-8").splitlines()]
    models: List[Dict[str, Any]] = []
    pipelines: List[Dict[str, Any]] = []
    for name, d in deployed["models"].items():
        call = _line(d["stdout"], "model = TextRecognition(")
        models.append({"id": f"{name}/paddle", "call": call})
        models.append({"id": f"{name}/onnxruntime", "call": call, "extra": {"engine": "onnxruntime"}})
        pipelines.append({"id": name, "call": _line(d["stdout"], "ocr = PaddleOCR(")})
    # PaddleX holds callers to the name in inference.yml: another registered name is refused.
    crnn = deployed["models"]["crnn"]["model"]
    models.append({"id": "crnn/wrong-name",
                   "call": f"model = TextRecognition(model_dir={str(crnn)!r}, "
                           "model_name='PP-OCRv4_mobile_rec')"})
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"images": images, "models": models, "pipelines": pipelines}),
                    encoding="utf-8")
    return paddleocr3_env.read(paddleocr3_python, spec, tmp)


def _compare(ours: Dict[str, Any], theirs: Any) -> Dict[str, Any]:
    assert isinstance(theirs, list), theirs.get("traceback") or theirs
    samples = ours["samples"]
    assert [r["path"] for r in theirs] == [s["path"] for s in samples]
    differ = [s["path"] for s, r in zip(samples, theirs) if r["text"] != s["prediction"]]
    return {"images": len(samples), "readings_that_differ": len(differ), "differ": differ,
            "max_score_diff": max(abs(r["score"] - s["score"]) for s, r in zip(samples, theirs)),
            "non_empty_readings": sum(bool(s["prediction"]) for s in samples)}


@pytest.fixture(scope="module")
def parity(paddleocr3, evaluations, tmp_path_factory) -> Dict[str, Dict[str, Any]]:
    table: Dict[str, Dict[str, Any]] = {}
    for name in evaluations:
        for ours, theirs in (("paddle", "paddle"), ("onnx", "onnxruntime")):
            found = paddleocr3["models"].get(f"{name}/{theirs}")
            if isinstance(found, list):
                table[f"{name} {theirs}"] = _compare(evaluations[name][ours], found)
    out = tmp_path_factory.mktemp("parity") / "paddleocr3-parity.json"
    out.write_text(json.dumps({"versions": paddleocr3["versions"], "parity": table}, indent=1),
                   encoding="utf-8")
    print(f"\nPaddleOCR 3.x parity ({paddleocr3['versions']}), written to {out}:")
    for key, row in table.items():
        print(f"  {key:32} images {row['images']:3}  differ {row['readings_that_differ']}  "
              f"max score diff {row['max_score_diff']:.2e}  non-empty {row['non_empty_readings']}")
    return table


def _skip_missing(deployed, name: str) -> None:  # noqa: ANN001
    if name not in deployed["models"]:
        pytest.skip(f"{name}: not exported here (the official Thai dictionary is missing)")


def test_the_environment_is_the_pinned_paddleocr(paddleocr3) -> None:  # noqa: ANN001
    versions = paddleocr3["versions"]
    assert versions["paddleocr"] == "3.7.0" and versions["paddlepaddle"] == "3.3.1"


@pytest.mark.parametrize("name", MODELS)
def test_paddleocr3_reads_every_image_like_evaluate(paddleocr3, evaluations, parity, deployed,
                                                    name: str) -> None:  # noqa: ANN001
    _skip_missing(deployed, name)
    # Loaded with the model name of its own inference.yml, as the printed line says.
    yml = yaml.safe_load((deployed["models"][name]["model"] / "inference.yml").read_text(encoding="utf-8"))
    assert f"model_name={yml['Global']['model_name']!r}" in _line(deployed["models"][name]["stdout"],
                                                                  "model = TextRecognition(")
    row = _compare(evaluations[name]["paddle"], paddleocr3["models"][f"{name}/paddle"])
    assert row["readings_that_differ"] == 0, row["differ"]
    assert row["max_score_diff"] <= SCORE_TOLERANCE
    if name in ("crnn", "ppocrv4-mobile"):  # the trained ones read something
        assert row["non_empty_readings"] > 0


@pytest.mark.parametrize("name", MODELS)
def test_paddleocr3_onnxruntime_reads_like_evaluate_onnx(paddleocr3, evaluations, deployed,
                                                         name: str) -> None:  # noqa: ANN001
    _skip_missing(deployed, name)
    row = _compare(evaluations[name]["onnx"], paddleocr3["models"][f"{name}/onnxruntime"])
    assert row["readings_that_differ"] == 0, row["differ"]
    assert row["max_score_diff"] <= SCORE_TOLERANCE


def test_paddleocr3_refuses_another_model_name(paddleocr3) -> None:  # noqa: ANN001
    refused = paddleocr3["models"]["crnn/wrong-name"]
    assert isinstance(refused, dict) and "mismatch" in refused["error"].lower()


@pytest.mark.parametrize("name", MODELS)
def test_the_printed_pipeline_line_takes_paddleocr_parameters(paddleocr3, deployed,
                                                              name: str) -> None:  # noqa: ANN001
    _skip_missing(deployed, name)
    assert paddleocr3["pipelines"][name] == "ok"


def test_parity_table(parity) -> None:  # noqa: ANN001
    """Every model was compared on both runtimes (the table is the report's figures)."""
    assert len(parity) >= 2 * 5
    assert all(row["readings_that_differ"] == 0 for row in parity.values())


def test_reader_is_not_rectrain(paddleocr3_python) -> None:  # noqa: ANN001
    """The judge runs without rectrain: the environment cannot import it."""
    import subprocess

    import paddleocr3_env

    proc = subprocess.run([str(paddleocr3_python), "-c", "import rectrain"], capture_output=True,
                          env=paddleocr3_env.reader_env(), cwd=str(Path("/")), timeout=120)
    assert proc.returncode != 0
