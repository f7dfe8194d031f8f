"""Evaluate an exported model on a labelled set with the engine's own inference code.

Numbers (see :mod:`rectrain.model.scores`): word accuracy, character error rate, the engine's
normalized edit distance, the most confused character pairs with their code points, and a PNG
grid of the worst samples. Labels are compared as written in the label file; the engine's own
eval instead drops label characters that are not in the dictionary (its label encoder cannot
represent them) and skips labels longer than ``max_text_length``: both are counted and shown
here, because those samples can never be read correctly.

Images are read as deployed: one at a time, with the preprocessing PaddleOCR 3.x's
``TextRecognition`` applies (the engine's ``TextRecognizer`` does the same arithmetic; see
:mod:`rectrain.model.deploy`), so the readings do not depend on ``batch_size`` and equal
PaddleOCR 3.x's image by image. Inference keeps an image's aspect ratio and widens the network
input for images wider than the model's input shape (``W/H``); the engine's training eval
(``RecResizeImg``) squeezes them to the fixed width instead. On such images the numbers here
may differ from the training log's eval; they are counted as ``wider_than_input``. The report
names the runtime that produced it (``runtime``: Paddle Inference or ONNX Runtime, version,
device, oneDNN, batching).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.data.labels import iter_labels_reporting
from rectrain.errors import DataError, UserError
from rectrain.logs import get_logger
from rectrain.model.error_report import REPORT_FILES
from rectrain.model.grid import worst_samples_grid
from rectrain.model.info import dictionary_chars, dictionary_path
from rectrain.model.predict import Recognizer, read_image
from rectrain.model.scores import (
    Confusion,
    confusions,
    describe_char,
    edit_distance,
    normalize,
    normalized_edit_distance,
    text_metrics,
)
from rectrain.outputs import (
    claim_output_dir,
    claim_output_file,
    record_output,
    refuse_output_over_inputs,
    write_json,
)

log = get_logger("model.evaluate")


@dataclass
class SampleResult:
    path: str
    label: str
    prediction: str
    score: float
    correct: bool
    edit_distance: int
    norm_edit_distance: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class EvalReport:
    model_dir: str
    labels: str
    word_accuracy: float
    cer: float
    norm_edit_dis: float
    correct: int
    total: int
    char_errors: int
    reference_chars: int
    ignore_space: bool
    samples: List[SampleResult] = field(default_factory=list)
    confusions: List[Confusion] = field(default_factory=list)
    out_of_dictionary: Dict[str, int] = field(default_factory=dict)  # char -> samples holding it
    out_of_dictionary_samples: int = 0
    too_long_samples: int = 0
    wider_than_input: int = 0
    model: Dict[str, Any] = field(default_factory=dict)
    runtime: Dict[str, Any] = field(default_factory=dict)
    json_path: Optional[str] = None
    grid_path: Optional[str] = None

    def as_dict(self) -> dict:
        return {
            "model_dir": self.model_dir, "labels": self.labels,
            "word_accuracy": self.word_accuracy, "cer": self.cer,
            "norm_edit_dis": self.norm_edit_dis, "correct": self.correct, "total": self.total,
            "char_errors": self.char_errors, "reference_chars": self.reference_chars,
            "ignore_space": self.ignore_space,
            "out_of_dictionary_samples": self.out_of_dictionary_samples,
            "out_of_dictionary": [{"char": c, "codepoints": [f"U+{ord(x):04X}" for x in c],
                                   "samples": n, "text": describe_char(c)}
                                  for c, n in self.out_of_dictionary.items()],
            "too_long_samples": self.too_long_samples,
            "wider_than_input": self.wider_than_input,
            "confusions": [c.as_dict() for c in self.confusions],
            "model": self.model, "runtime": self.runtime, "grid_png": self.grid_path,
            "samples": [s.as_dict() for s in self.samples],
        }

    def summary(self, top: int = 10) -> str:
        lines = [
            f"samples              {self.total}",
            f"word accuracy        {self.word_accuracy:.4f}  ({self.correct}/{self.total})",
            f"character error rate {self.cer:.4f}  ({self.char_errors}/{self.reference_chars} chars)",
            f"norm. edit distance  {self.norm_edit_dis:.4f}  (engine RecMetric: 1 - mean NED)",
        ]
        if self.runtime:
            lines.append(f"runtime              {describe_runtime(self.runtime)}")
        if self.out_of_dictionary_samples:
            chars = ", ".join(describe_char(c) for c in list(self.out_of_dictionary)[:5])
            lines.append(f"labels with characters outside the dictionary: "
                         f"{self.out_of_dictionary_samples} ({chars})")
        if self.too_long_samples:
            lines.append(f"labels longer than max_text_length (the engine's eval skips them): "
                         f"{self.too_long_samples}")
        if self.wider_than_input:
            lines.append(f"images wider than the model input (read at full width here, squeezed by "
                         f"the training eval): {self.wider_than_input}")
        if self.confusions:
            lines.append("most confused (label -> predicted: count):")
            lines += [f"  {c.describe()}" for c in self.confusions[:top]]
        if self.grid_path:
            lines.append(f"worst samples: {self.grid_path}")
        if self.json_path:
            lines.append(f"report: {self.json_path}")
        return "\n".join(lines)


def describe_runtime(runtime: Dict[str, Any]) -> str:
    """One line: what produced the readings (see :meth:`Recognizer._describe_runtime`)."""
    if runtime.get("backend") == "onnxruntime":
        where = f"onnxruntime {runtime.get('version')} ({', '.join(runtime.get('providers') or [])})"
    else:
        device = str(runtime.get("device", "?")).upper()
        if runtime.get("cpu_threads"):
            device += f", {runtime['cpu_threads']} threads"
        if "cpu_onednn" in runtime:
            device += ", oneDNN " + ("on" if runtime["cpu_onednn"] else
                                     f"off: {runtime.get('cpu_onednn_off_because')}")
        where = f"paddle inference {runtime.get('version')} ({device})"
    return f"{where}; {runtime.get('batching')}"


def read_labelled_samples(labels: Path, images_root: Path) -> List[Tuple[Path, str]]:
    """``(image path, label)`` for every line, split as the engine's SimpleDataSet does."""
    if not labels.is_file():
        raise UserError(f"label file {labels} does not exist.", "check --labels.")
    samples: List[Tuple[Path, str]] = []
    missing: List[str] = []
    for rec in iter_labels_reporting(labels):
        codes = {code for code, _ in rec.issues}
        if "blank-line" in codes:
            continue
        if not rec.parsed or rec.path is None or rec.label is None:
            detail = next(iter(rec.issues), ("unparsed", ""))
            raise DataError(f"cannot parse this line ({detail[0]}: {detail[1]})",
                            "each line must be IMAGE_PATH<TAB>LABEL in UTF-8 "
                            "(rectrain data validate finds every such line).",
                            path=str(labels), line=rec.line)
        image = images_root / rec.path
        if not image.is_file():
            missing.append(f"{rec.path} (line {rec.line})")
        samples.append((image, rec.label))
    if missing:
        raise DataError(f"{len(missing)} image(s) not found under {images_root}: "
                        f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}",
                        "pass --images-root: the folder the paths in the label file are relative to.",
                        path=str(labels))
    if not samples:
        raise DataError("no samples.", "fill the label file.", path=str(labels))
    return samples


def _progress(total: int):  # noqa: ANN202
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress("evaluating", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def evaluate_model(model_dir: str, labels: str, images_root: Optional[str] = None,
                   json_out: Optional[str] = None, grid_png: Optional[str] = None,
                   paddleocr_dir: Optional[str] = None, *, batch_size: int = 1,
                   ignore_space: bool = True, top_confusions: int = 20, worst: int = 24,
                   use_gpu: Optional[bool] = None, chunk: int = 256,
                   backend: str = "paddle", report_dir: Optional[str] = None) -> EvalReport:
    """Evaluate an exported model on ``labels`` (paths relative to ``images_root``, by
    default the label file's folder). Writes ``json_out`` and ``grid_png`` when given.
    ``backend``: ``paddle`` (Paddle Inference) or ``onnx`` (ONNX Runtime on inference.onnx);
    ``batch_size`` changes the speed, not the readings (:class:`Recognizer`). ``report_dir``:
    the folder :func:`~rectrain.model.error_report.write_error_report` will write, claimed
    here, before any work."""
    labels_path = Path(labels).resolve()
    root = Path(images_root).resolve() if images_root else labels_path.parent
    model_files = [p for p in Path(model_dir).glob("*") if p.is_file()] if Path(model_dir).is_dir() else []
    inputs = [("label file", labels_path)] + [("model file", p) for p in model_files]
    if json_out:
        claim_output_file(json_out, command="evaluate", flag="--json", inputs=inputs, kind="json")
    if grid_png:
        claim_output_file(grid_png, command="evaluate", flag="--grid", inputs=inputs, kind="png")
    if report_dir:
        claim_output_dir(report_dir, command="evaluate", flag="--report", writes=list(REPORT_FILES),
                         inputs=inputs, create=False)
    samples = read_labelled_samples(labels_path, root)
    refuse_output_over_inputs(grid_png, [("image", p) for p, _ in samples], flag="--grid")
    recognizer = Recognizer(model_dir, paddleocr_dir=paddleocr_dir, batch_size=batch_size,
                            use_gpu=use_gpu, backend=backend)
    info = recognizer.info

    results: List[SampleResult] = []
    _, in_h, in_w = (list(info["rec_image_shape"]) + [0, 0, 0])[:3]
    wider = 0
    with _progress(len(samples)) as progress:
        task = progress.add_task("evaluating", total=len(samples))
        for start in range(0, len(samples), chunk):
            part = samples[start:start + chunk]
            images = [read_image(p, info.get("decode")) for p, _ in part]
            if in_h and in_w:
                wider += sum(img.shape[1] * in_h > in_w * img.shape[0] for img in images)
            outputs = recognizer.recognize(images)
            for (path, label), (text, score) in zip(part, outputs):
                ref, hyp = normalize(label, ignore_space), normalize(text, ignore_space)
                results.append(SampleResult(
                    path=str(path), label=label, prediction=text, score=score, correct=ref == hyp,
                    edit_distance=edit_distance(ref, hyp),
                    norm_edit_distance=normalized_edit_distance(ref, hyp)))
            progress.advance(task, len(part))

    pairs = [(r.label, r.prediction) for r in results]
    m = text_metrics(pairs, ignore_space=ignore_space)
    ood: Counter = Counter()
    ood_samples = too_long = 0
    dict_file = dictionary_path(recognizer.model_dir, info)
    if dict_file is not None:
        classes = set(dictionary_chars(dict_file, bool(info.get("use_space_char"))))
        for _, label in samples:
            outside = {ch for ch in label if ch not in classes and not (ignore_space and ch == " ")}
            ood.update(outside)
            ood_samples += bool(outside)
    max_len = info.get("max_text_length")
    if max_len:
        too_long = sum(len(label) > int(max_len) for _, label in samples)
    report = EvalReport(
        model_dir=str(recognizer.model_dir), labels=str(labels_path),
        word_accuracy=m.word_accuracy, cer=m.cer, norm_edit_dis=m.norm_edit_dis,
        correct=m.correct, total=m.samples, char_errors=m.char_errors,
        reference_chars=m.reference_chars, ignore_space=ignore_space, samples=results,
        confusions=confusions(pairs, top=top_confusions, ignore_space=ignore_space),
        out_of_dictionary=dict(ood.most_common()), out_of_dictionary_samples=ood_samples,
        too_long_samples=too_long, wider_than_input=int(wider),
        model={k: info.get(k) for k in ("algorithm", "rec_image_shape", "engine", "paddle_version",
                                        "checkpoint", "metrics")},
        runtime=recognizer.runtime,
    )
    if grid_png:
        report.grid_path = str(worst_samples_grid(results, grid_png, limit=worst))
        record_output(grid_png, command="evaluate")
    if json_out:
        report.json_path = str(Path(json_out).resolve())
        write_json(json_out, report.as_dict())
        record_output(json_out, command="evaluate")
    return report
