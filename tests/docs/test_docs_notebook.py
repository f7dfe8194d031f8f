"""notebook.ipynb: committed without outputs, sections in the documented order, calls the public
Python API (no shell), and — slow — runs top to bottom with nbclient on a temp copy with its
default parameters (embedded S3, CPU, the sample data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebook.ipynb"
SECTIONS = ["1. Environment & GPU check", "2. Engine & dependencies",
            "3. S3 configuration & data management", "4. Annotation validation",
            "5. Training configuration", "6. Training (local, or a SageMaker job)",
            "7. Checkpoint management", "8. Progress monitoring"]
PUBLIC_API = ["upload_recognition_data_to_s3", "download_recognition_data_from_s3",
              "validate_recognition_annotation_format", "convert_detection_to_recognition_format",
              "create_recognition_training_config", "start_recognition_training",
              "monitor_recognition_training_progress", "sync_recognition_checkpoints_to_s3",
              "download_recognition_checkpoints_from_s3", "run_doctor"]


def load() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_outputs_are_stripped() -> None:
    for i, cell in enumerate(load()["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has outputs: strip them before committing"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"


def test_sections_in_order() -> None:
    headings = [line[3:].strip() for cell in load()["cells"] if cell["cell_type"] == "markdown"
                for line in source(cell).splitlines() if line.startswith("## ")]
    numbered = [h for h in headings if re.match(r"^\d+\. ", h)]
    assert numbered == SECTIONS


def test_parameters_cell_first() -> None:
    code_cells = [c for c in load()["cells"] if c["cell_type"] == "code"]
    first = code_cells[0]
    assert "parameters" in first.get("metadata", {}).get("tags", [])
    text = source(first)
    for name in ["WORKDIR", "S3_ENDPOINT", "BUCKET", "PRESET", "EPOCHS", "DEVICE", "USE_SAGEMAKER"]:
        assert re.search(rf"^{name}\s*=", text, re.M), f"parameter {name} missing"
    assert re.search(r'^DEVICE\s*=\s*"cpu"', text, re.M)
    assert re.search(r"^USE_SAGEMAKER\s*=\s*False", text, re.M)
    assert re.search(r'^S3_ENDPOINT\s*=\s*"embedded"', text, re.M)


def test_uses_public_api_not_shell() -> None:
    code = "\n".join(source(c) for c in load()["cells"] if c["cell_type"] == "code")
    for name in PUBLIC_API:
        assert f"rectrain.{name}(" in code, f"the notebook does not call rectrain.{name}"
    import rectrain

    for name in set(re.findall(r"\brectrain\.([a-z_]+)\(", code)):
        assert name in rectrain.__all__, f"rectrain.{name} is not part of the public API"
    for line in code.splitlines():
        stripped = line.strip()
        assert not stripped.startswith("!") and not stripped.startswith("%%"), f"shell in notebook: {line}"
    assert "subprocess" not in code and "os.system" not in code


def _set_parameters(nb: object, **values: object) -> None:
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))  # type: ignore[attr-defined]
    cell.source += "\n# injected by the test\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    work = tmp_path / "work"
    _set_parameters(nb, WORKDIR=str(work))
    copy = tmp_path / "notebook.ipynb"
    nbformat.write(nb, str(copy))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(copy))  # keep the executed copy next to the work dir for debugging
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # The run really trained, uploaded checkpoints and plotted.
    metrics = work / "run" / "metrics.jsonl"
    assert metrics.is_file() and metrics.stat().st_size > 0
    steps = [json.loads(line).get("global_step") for line in metrics.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    assert any(s for s in steps)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert images, "no inline plot in the notebook output"
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream")
    assert "status: completed" in text and "complete in S3:" in text and "word accuracy" in text
    model = json.loads((work / "model" / "model.json").read_text(encoding="utf-8"))
    assert model, "the exported model has a model.json"
