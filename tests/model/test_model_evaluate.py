"""Evaluate and predict with an exported model, checked against the engine's own eval and
checkpoint inference on the same checkpoint (slow: runs the engine)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from rectrain.cli.main import main
from rectrain.engine import engine_command
from rectrain.errors import UserError
from rectrain.model.evaluate import evaluate_model
from rectrain.model.predict import predict
from rectrain.model.scores import text_metrics

pytestmark = pytest.mark.slow


def _engine_eval(engine, run_dir: Path) -> Dict[str, float]:
    """tools/eval.py on best_accuracy with the run's own config (Eval = the training set)."""
    argv, env = engine_command(engine, "eval", str(run_dir / "config.yml"), {
        "Global.checkpoints": str(run_dir / "checkpoints" / "best_accuracy")})
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout + out.stderr
    tail = text.split("metric eval ***************", 1)[1]
    return {k: float(re.search(rf"{k}:([0-9.eE+-]+)", tail).group(1)) for k in ("acc", "norm_edit_dis")}


def _engine_infer(engine, run_dir: Path, images: Path, tmp: Path) -> Dict[str, Tuple[str, float]]:
    """tools/infer_rec.py (dynamic graph, straight from the checkpoint) on every image."""
    res = tmp / "infer.txt"
    argv, env = engine_command(engine, "infer_rec", str(run_dir / "config.yml"), {
        "Global.checkpoints": str(run_dir / "checkpoints" / "best_accuracy"),
        "Global.infer_img": str(images), "Global.save_res_path": str(res)})
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    result = {}
    for line in res.read_text(encoding="utf-8").splitlines():
        path, text, score = line.split("\t")
        result[Path(path).name] = (text, float(score))
    return result


@pytest.fixture(scope="module")
def report(exported, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    return evaluate_model(str(exported), str(tiny_run["labels"]), json_out=str(out / "eval.json"),
                          grid_png=str(out / "worst.png"))


def test_evaluation_matches_the_engines_own_eval(report, tiny_run, engine):
    ref = _engine_eval(engine, tiny_run["run_dir"])
    assert ref["norm_edit_dis"] > 0.01  # the model reads something: the comparison is not 0 == 0
    # The engine divides by (n + 1e-5): for 18 samples that is < 1e-6 away from ours.
    assert report.word_accuracy == pytest.approx(ref["acc"], abs=1e-6)
    assert report.norm_edit_dis == pytest.approx(ref["norm_edit_dis"], abs=1e-6)
    # The eval the training run logged at its end agrees as well.
    log = (tiny_run["run_dir"] / "train.log").read_text(encoding="utf-8")
    logged = re.findall(r"cur metric, acc: ([0-9.eE+-]+), norm_edit_dis: ([0-9.eE+-]+)", log)[-1]
    assert report.norm_edit_dis == pytest.approx(float(logged[1]), abs=1e-6)


def test_exported_model_reads_like_the_checkpoint(exported, tiny_run, engine, tmp_path):
    """Per image, text and confidence from the exported model equal those of the engine's
    checkpoint inference: no drift in preprocessing, network or decoding."""
    reference = _engine_infer(engine, tiny_run["run_dir"], tiny_run["images"], tmp_path)
    preds = predict(str(exported), [str(tiny_run["images"])])
    assert len(preds) == len(reference) == 18
    for p in preds:
        text, score = reference[Path(p.path).name]
        assert p.text == text, p.path
        assert p.score == pytest.approx(score, abs=1e-4), p.path


def test_report_numbers_are_consistent_with_predictions(report, exported, tiny_run):
    preds = {Path(p.path).name: p.text for p in predict(str(exported), [str(tiny_run["images"])])}
    pairs: List[Tuple[str, str]] = []
    for line in tiny_run["labels"].read_text(encoding="utf-8").splitlines():
        path, label = line.split("\t")
        pairs.append((label, preds[Path(path).name]))
    assert [s.prediction for s in report.samples] == [p for _, p in pairs]
    correct = sum(label == pred for label, pred in pairs)
    assert report.correct == correct and report.total == 18
    assert report.word_accuracy == pytest.approx(correct / 18)
    m = text_metrics(pairs)
    assert (report.cer, report.norm_edit_dis) == (pytest.approx(m.cer), pytest.approx(m.norm_edit_dis))
    assert report.char_errors == sum(s.edit_distance for s in report.samples)
    assert sum(c.count for c in report.confusions) <= report.char_errors
    assert report.out_of_dictionary_samples == 0


def test_report_files(report):
    data = json.loads(Path(report.json_path).read_text(encoding="utf-8"))
    assert data["total"] == 18 and len(data["samples"]) == 18
    assert data["word_accuracy"] == report.word_accuracy
    assert data["model"]["algorithm"] == "CRNN"
    for c in data["confusions"]:
        assert all(cp.startswith("U+") for cp in c["label_codepoints"] + c["predicted_codepoints"])
    png = Path(report.grid_path).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "word accuracy" in report.summary()


def _copy(exported: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(exported, target)
    return target


def test_refuses_a_changed_dictionary(exported, tiny_run, tmp_path):
    model = _copy(exported, tmp_path)
    lines = (model / "dict.txt").read_text(encoding="utf-8").splitlines()
    lines[0], lines[1] = lines[1], lines[0]  # same size, other meaning
    (model / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="not the one the model was trained with"):
        predict(str(model), [str(tiny_run["images"])])
    with pytest.raises(UserError, match="not the one the model was trained with"):
        evaluate_model(str(model), str(tiny_run["labels"]))


def test_refuses_another_engine_version(exported, tiny_run, tmp_path):
    model = _copy(exported, tmp_path)
    info = json.loads((model / "model.json").read_text(encoding="utf-8"))
    info["engine"]["version"] = "2.9.1"
    (model / "model.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(UserError, match="2.9.1"):
        predict(str(model), [str(tiny_run["images"])])
    with pytest.raises(UserError, match="2.9.1"):
        evaluate_model(str(model), str(tiny_run["labels"]))


def test_missing_images_and_bad_model_dir_are_user_errors(exported, tiny_run, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("images/nope.png\tกา\n", encoding="utf-8")
    with pytest.raises(UserError, match="not found"):
        evaluate_model(str(exported), str(labels), images_root=str(tiny_run["root"]))
    with pytest.raises(UserError, match="model.json"):
        predict(str(tmp_path), [str(tiny_run["images"])])


def test_cli_export_evaluate_predict(tiny_run, tmp_path, capsys):
    out = tmp_path / "cli-model"
    assert main(["export", "--run-dir", str(tiny_run["run_dir"]), "-o", str(out)]) == 0
    assert "exported" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(out), "--labels", str(tiny_run["labels"]),
                 "--images-root", str(tiny_run["root"]), "--json", str(tmp_path / "e.json")]) == 0
    assert "word accuracy" in capsys.readouterr().out
    first = sorted(tiny_run["images"].iterdir())[0]
    assert main(["predict", "--model", str(out), "--json", str(first)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["path"] == str(first) and isinstance(line["score"], float)
    # A bad input is one line and exit code 2, not a traceback.
    assert main(["predict", "--model", str(tmp_path), str(first)]) == 2


def test_flags_wide_images_and_characters_outside_the_dictionary(exported, tiny_run, tmp_path):
    from PIL import Image

    Image.new("RGB", (250, 32), (255, 255, 255)).save(tmp_path / "wide.png")  # 7.8 > 100/32
    first = sorted(tiny_run["images"].iterdir())[0]
    shutil.copyfile(first, tmp_path / "narrow.png")
    labels = tmp_path / "labels.txt"
    labels.write_text("wide.png\tabcabc\nnarrow.png\tokZ\n", encoding="utf-8")
    report = evaluate_model(str(exported), str(labels))  # images relative to the label file
    assert report.total == 2
    assert report.wider_than_input == 1
    assert report.out_of_dictionary == {"Z": 1} and report.out_of_dictionary_samples == 1
    text = report.summary()
    assert "outside the dictionary: 1" in text and "U+005A" in text and "wider than the model input" in text


@pytest.mark.gpu
def test_predict_on_gpu_matches_cpu(exported, tiny_run):
    from rectrain.model.predict import _gpu_available

    if not _gpu_available():
        pytest.skip("no GPU with a CUDA build of Paddle")
    cpu = predict(str(exported), [str(tiny_run["images"])], use_gpu=False)
    gpu = predict(str(exported), [str(tiny_run["images"])], use_gpu=True)
    assert [p.text for p in gpu] == [p.text for p in cpu]
    assert max(abs(a.score - b.score) for a, b in zip(gpu, cpu)) < 1e-3
