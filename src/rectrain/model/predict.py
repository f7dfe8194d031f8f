"""Recognize text with an exported model through the engine's own inference code.

Preprocessing, the Paddle predictor and CTC decoding are the engine's
``tools/infer/predict_rec.py`` ``TextRecognizer`` (and ``tools/infer/utility.py``
``create_predictor``), imported in-process from the same engine root that trained and
exported the model, with its arguments taken from ``model.json``: nothing is re-implemented, so
inference cannot drift from the engine. Before anything runs, the model's engine and dictionary
are checked (:func:`rectrain.model.info.check_compatible`).
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from rectrain.engine import Engine, find_engine
from rectrain.errors import DataError, EnvironmentProblem, UserError
from rectrain.fsutil import refuse_special
from rectrain.logs import get_logger
from rectrain.model.deploy import DYNAMIC_WIDTH, onednn_breakers
from rectrain.model.info import check_compatible, dictionary_path, program_file, read_model_info
from rectrain.model.onnx_export import ONNX_FILE

log = get_logger("model.predict")

# PaddleOCR 3.x's default ``cpu_threads`` (paddleocr/_constants.py DEFAULT_CPU_THREADS).
PADDLEOCR3_CPU_THREADS = 10
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


@dataclass
class Prediction:
    path: str
    text: str
    score: float

    def as_dict(self) -> dict:
        return {"path": self.path, "text": self.text, "score": self.score}


def _engine_modules(engine: Engine) -> Tuple[Any, Any]:
    """Import the engine's ``tools.infer.predict_rec`` and ``tools.infer.utility`` from
    ``engine.root`` (refusing a process that already imported another engine's ``ppocr``)."""
    root = str(engine.root)
    loaded = sys.modules.get("ppocr")
    loaded_file = getattr(loaded, "__file__", None)
    if loaded_file:
        loaded_root = str(Path(loaded_file).resolve().parent.parent)
        if loaded_root != root:
            raise EnvironmentProblem(
                f"this Python process already loaded another engine's ppocr ({loaded_root}).",
                "run predictions for each engine in its own process.")
    # The engine's modules are top-level ``tools`` and ``ppocr`` under its root (and they add
    # more folders to sys.path themselves). Put sys.path back afterwards: the package root on
    # it would shadow ``unstructured_paddleocr`` with the module file of the same name inside.
    saved_path = list(sys.path)
    sys.path.insert(0, root)
    try:
        # The engine logs a banner and warnings on import; keep them out of our output.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Paddle's "No ccache found" and the like
            import tools.infer.predict_rec as predict_rec  # type: ignore[import-not-found]
            import tools.infer.utility as utility  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EnvironmentProblem(f"cannot import the engine's inference code from {root}: {exc}",
                                 "install the engine with its dependencies (./setup.sh).") from None
    finally:
        sys.path[:] = saved_path
    if not isinstance(utility.inference, _PirAwareInference):
        utility.inference = _PirAwareInference(utility.inference)
    return predict_rec, utility


class _PirAwareInference:
    """``paddle.inference`` as the engine's ``utility`` module sees it, except that ``Config``
    switches on the new IR and executor for a PIR program (``inference.json``), and switches
    oneDNN off for a program that oneDNN cannot run.

    The engine's ``create_predictor`` (PaddleOCR 2.10) predates PIR: it enables memory
    optimisation but never ``enable_new_ir``, and Paddle 3.3 then fails to create a predictor
    for a ``.json`` model ("Not find predictor_id 0 and pass_name memory_optimize_pass").
    Paddle 3.3 turns oneDNN on by default on the CPU, and its oneDNN executor cannot run
    bilinear interpolation (SVTR's STN): :func:`rectrain.model.deploy.onednn_breakers`. The
    CPU thread count is PaddleOCR 3.x's default, because oneDNN's results depend on it (a
    score moved by 3.5e-5 between 1 and 10 threads).
    Only the engine's module sees this wrapper; see docs/problem-log.md."""

    def __init__(self, module: Any) -> None:
        self._module = module
        base = module.Config

        class Config(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any) -> None:
                super().__init__(*args)
                if args and str(args[0]).endswith(".json"):
                    self.enable_new_ir(True)
                    self.enable_new_executor(True)
                if args and onednn_breakers(Path(str(args[0]))):
                    self.disable_mkldnn()  # on by default on the CPU; see rectrain.model.deploy
                # As PaddleOCR 3.x runs it on the CPU: oneDNN results depend on the thread count.
                self.set_cpu_math_library_num_threads(PADDLEOCR3_CPU_THREADS)

        self.Config = Config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _warn_on_other_paddle(info: Dict[str, Any]) -> None:
    import paddle

    exported = str(info.get("paddle_version") or "")
    running = str(getattr(paddle, "__version__", ""))
    if exported and running and exported.split(".")[:2] != running.split(".")[:2]:
        log.warning("model exported with Paddle %s, running Paddle %s: readings may differ "
                    "slightly; re-export with this Paddle for identical results.", exported, running)


def _gpu_available() -> bool:
    try:
        import paddle

        return bool(paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0)
    except Exception:  # noqa: BLE001 - no GPU is the answer to any failure here
        return False


def read_image(path: Path, decode: Optional[Dict[str, Any]] = None) -> Any:
    """Decode as the training config's ``DecodeImage`` did (``decode`` from model.json):
    ``cv2.imdecode`` of the bytes in colour, channels reversed when it was ``img_mode: RGB``
    (the engine's default when the config names none), so the network sees what it was
    trained on. Works for any file name (``cv2.imread`` does not on every platform)."""
    import cv2
    import numpy as np

    decode = decode or {}
    refuse_special(path, what="image")
    try:
        data = np.frombuffer(Path(path).read_bytes(), dtype="uint8")
    except OSError as exc:
        raise DataError(f"cannot read image: {exc.strerror}", "check the path.", path=str(path)) from None
    flags = cv2.IMREAD_COLOR
    if decode.get("ignore_orientation"):
        flags |= cv2.IMREAD_IGNORE_ORIENTATION
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise DataError("not a readable image (empty or unknown format)",
                        "remove it or replace it with a valid image.", path=str(path))
    if decode.get("img_mode") == "RGB":
        img = np.ascontiguousarray(img[:, :, ::-1])
    return img


BACKENDS = ("paddle", "onnx")


def _onnx_providers(use_gpu: Optional[bool]) -> List[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise EnvironmentProblem("--backend onnx needs onnxruntime, which is not installed.",
                                 "run ./setup.sh (it installs the pinned onnxruntime).") from None
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if use_gpu and not cuda:
        raise EnvironmentProblem("--device gpu was asked for, but this onnxruntime has no CUDA "
                                 "provider.", "use --device cpu (or auto), or install "
                                 "onnxruntime-gpu on a machine with an NVIDIA GPU.")
    if cuda and (use_gpu or (use_gpu is None and _gpu_available())):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _quiet_session_options() -> Any:
    """ONNX Runtime session options that keep its warnings about constants it folded away
    (harmless, one line per constant) out of the output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return options


class Recognizer:
    """An exported model loaded once; :meth:`recognize` takes BGR images (numpy HxWx3).

    ``backend``: ``paddle`` (Paddle Inference on the exported program) or ``onnx`` (ONNX
    Runtime on ``inference.onnx``, from ``rectrain export --onnx``); preprocessing and decoding
    are the engine's either way. Images are read one at a time, as PaddleOCR 3.x's
    ``TextRecognition`` reads them by default; ``batch_size`` > 1 batches only images whose
    network input has the same width, so each image gets the same input tensor as alone and
    the readings do not depend on which images share a batch."""

    def __init__(self, model_dir: str, *, paddleocr_dir: Optional[str] = None,
                 batch_size: int = 1, use_gpu: Optional[bool] = None, check: bool = True,
                 backend: str = "paddle") -> None:
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}.", f"use one of: {', '.join(BACKENDS)}.")
        if int(batch_size) < 1:
            raise UserError(f"--batch-size {batch_size} is not a positive number.",
                            "pass 1 (one image at a time, the default) or more.")
        self.model_dir = Path(model_dir).resolve()
        self.info = read_model_info(self.model_dir)
        self.engine = find_engine(paddleocr_dir)
        self.backend = backend
        self.batch_size = int(batch_size)
        if check:
            check_compatible(self.model_dir, self.info, self.engine)
        if backend == "onnx" and not (self.model_dir / ONNX_FILE).is_file():
            raise UserError(f"{self.model_dir} has no {ONNX_FILE}.",
                            "export the model with `rectrain export --onnx`.")
        predict_rec, utility = _engine_modules(self.engine)  # imports Paddle quietly
        if check:
            _warn_on_other_paddle(self.info)
        args = utility.init_args().parse_args([])
        dict_file = dictionary_path(self.model_dir, self.info)
        args.rec_model_dir = str(self.model_dir)
        args.rec_algorithm = self.info["algorithm"]
        args.rec_image_shape = ",".join(str(v) for v in self.info["rec_image_shape"])
        args.rec_char_dict_path = str(dict_file) if dict_file else None
        args.use_space_char = bool(self.info["use_space_char"])
        if self.info.get("max_text_length"):
            args.max_text_length = int(self.info["max_text_length"])
        args.rec_batch_num = self.batch_size
        if use_gpu and backend == "paddle" and not _gpu_available():
            raise EnvironmentProblem("--device gpu was asked for, but this Paddle build sees no GPU.",
                                     "use --device cpu (or auto), or install paddlepaddle-gpu on a "
                                     "machine with an NVIDIA GPU.")
        args.use_gpu = _gpu_available() if use_gpu is None else bool(use_gpu)
        program = program_file(self.model_dir)
        self._onednn_breakers = onednn_breakers(program) if program else []
        # On the CPU, as PaddleOCR 3.x: oneDNN (cache of 10 shapes) with 10 threads, unless
        # the program holds an op oneDNN cannot run.
        args.enable_mkldnn = not args.use_gpu and not self._onednn_breakers
        args.cpu_threads = PADDLEOCR3_CPU_THREADS
        args.use_onnx = backend == "onnx"
        if args.use_onnx:
            args.rec_model_dir = str(self.model_dir / ONNX_FILE)
            args.onnx_providers = _onnx_providers(use_gpu)
            args.onnx_sess_options = _quiet_session_options()
            args.use_gpu = "CUDAExecutionProvider" in args.onnx_providers
        args.benchmark = False
        args.return_word_box = False
        args.show_log = False
        self.args = args
        try:
            self._recognizer = predict_rec.TextRecognizer(args)
        except Exception as exc:  # noqa: BLE001 - the engine raises bare exceptions
            raise UserError(f"the engine could not load the model in {self.model_dir}: "
                            f"{type(exc).__name__}: {exc}",
                            "export the model again with this engine and Paddle version.") from exc
        self.runtime = self._describe_runtime()

    def _describe_runtime(self) -> Dict[str, Any]:
        """What produced the readings: the runtime and its version, device, batching."""
        runtime: Dict[str, Any]
        if self.backend == "onnx":
            import onnxruntime as ort

            runtime = {"backend": "onnxruntime", "version": ort.__version__,
                       "providers": list(self.args.onnx_providers), "model_file": ONNX_FILE}
        else:
            import paddle

            program = program_file(self.model_dir)
            runtime = {"backend": "paddle-inference", "version": paddle.__version__,
                       "device": "gpu" if self.args.use_gpu else "cpu",
                       "model_file": program.name if program else None}
            if not self.args.use_gpu:
                runtime["cpu_threads"] = PADDLEOCR3_CPU_THREADS
                runtime["cpu_onednn"] = not self._onednn_breakers
                if self._onednn_breakers:
                    runtime["cpu_onednn_off_because"] = ", ".join(self._onednn_breakers)
        runtime["pre_and_post_processing"] = (f"{self.engine.kind} {self.engine.version} "
                                              "tools/infer/predict_rec.py")
        runtime["batching"] = ("one image at a time (as PaddleOCR 3.x TextRecognition reads by "
                               "default)" if self.batch_size == 1 else
                               f"up to {self.batch_size} images of the same input width per batch "
                               "(each image gets the input tensor it gets alone)")
        return runtime

    def input_width(self, image: Any) -> int:
        """The width of the network input the engine builds for ``image`` read alone."""
        _, in_h, in_w = (list(self.info["rec_image_shape"]) + [0, 0, 0])[:3]
        if self.info.get("algorithm") not in DYNAMIC_WIDTH or not in_h:
            return int(in_w)
        h, w = image.shape[:2]
        return int(in_h * max(in_w / in_h, w * 1.0 / h))

    def recognize(self, images: Sequence[Any]) -> List[Tuple[str, float]]:
        """``[(text, score)]`` for BGR images, in order."""
        groups: Dict[int, List[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(self.input_width(image), []).append(index)
        results: List[Tuple[str, float]] = [("", 0.0)] * len(images)
        for indices in groups.values():
            out, _elapsed = self._recognizer([images[i] for i in indices])
            for i, (text, score, *_) in zip(indices, out):
                results[i] = (str(text), float(score))
        return results

    def recognize_files(self, paths: Sequence[Path], chunk: int = 256) -> List[Prediction]:
        """Read and recognize image files, ``chunk`` at a time (bounded memory)."""
        predictions: List[Prediction] = []
        for start in range(0, len(paths), chunk):
            part = [Path(p) for p in paths[start:start + chunk]]
            images = [read_image(p, self.info.get("decode")) for p in part]
            for path, (text, score) in zip(part, self.recognize(images)):
                predictions.append(Prediction(path=str(path), text=text, score=score))
        return predictions


def expand_images(inputs: Iterable[str]) -> List[Path]:
    """Files as given; folders expanded to their image files (sorted, not recursive)."""
    paths: List[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"image {path} does not exist.", "check the path.")
    return paths


def predict(model_dir: str, images: Sequence[str], *, paddleocr_dir: Optional[str] = None,
            batch_size: int = 1, use_gpu: Optional[bool] = None,
            backend: str = "paddle") -> List[Prediction]:
    """Recognize the text in image files (or folders of images) with an exported model
    (``backend``: ``paddle`` or ``onnx``, see :class:`Recognizer`)."""
    paths = expand_images(images)
    if not paths:
        raise UserError("no images to recognize.", "pass image files or folders that hold images.")
    recognizer = Recognizer(model_dir, paddleocr_dir=paddleocr_dir, batch_size=batch_size,
                            use_gpu=use_gpu, backend=backend)
    return recognizer.recognize_files(paths)


def model_summary(info: Dict[str, Any]) -> str:
    d = info.get("dictionary") or {}
    return (f"{info.get('algorithm')} {info.get('rec_image_shape')} · {d.get('classes', '?')} classes · "
            f"engine {info['engine'].get('kind')} {info['engine'].get('version')} · "
            f"paddle {info.get('paddle_version')}")

