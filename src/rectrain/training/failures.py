"""Classify engine failures from its output: one message with the fix, and a problem-log entry."""

from __future__ import annotations

import collections
import errno
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Deque, List, Optional, Pattern, Sequence, Tuple, Union

from rectrain.machine.cgroups import own_cgroups
from rectrain.outputs import open_append
from rectrain.redaction import redact
from rectrain.runlog.records import strip_line


@dataclass
class Failure:
    kind: str
    message: str
    fix: str
    evidence: str = ""


def disk_full(exc: OSError) -> Optional[Failure]:
    """The failure for rectrain's own write that found the disk full (None: another OS error)."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    kind, _, message, fix = RULES[0]
    where = f" ({exc.filename})" if exc.filename else ""
    return Failure(kind, message[:-1] + where + ".", fix, f"{type(exc).__name__}: {exc}")


# (kind, pattern, message, fix); the first match in the output wins, most specific first.
RULES: List[Tuple[str, Pattern[str], str, str]] = [
    ("disk_full",
     re.compile(r"(No space left on device|Errno 28\]|Disk quota exceeded)", re.I),
     "the disk is full.",
     "free space on the disk of the run folder and the checkpoints (or use another --run-dir), "
     "then rerun the same command with --resume: the run continues from its newest checkpoint."),
    ("out_of_gpu_memory",
     re.compile(r"(Out of memory error on GPU|ResourceExhaustedError|CUDA out of memory|"
                r"cudaErrorMemoryAllocation|out of memory)", re.I),
     "the GPU ran out of memory.",
     "lower Train.loader.batch_size_per_card (e.g. halve it), turn on AMP (--amp in `rectrain "
     "config build`), or shorten the image width in RecResizeImg / max_text_length."),
    ("gpu_not_available",
     re.compile(r"cannot be set as true while your paddle is not compiled with cuda", re.I),
     "the config asks for a GPU but this Paddle is a CPU build.",
     "install paddlepaddle-gpu (see `rectrain doctor`) or run with --device cpu."),
    ("shared_memory",
     re.compile(r"(DataLoader (reader thread|worker).*(raised|exit|fail)|Bus error|"
                r"shared memory|/dev/shm|received signal SIGBUS|worker\(s\) exited unexpectedly)", re.I),
     "a DataLoader worker crashed (usually too little shared memory, /dev/shm).",
     "run the container with a larger --shm-size (e.g. --shm-size=8g), or set "
     "Train.loader.num_workers to 0-2 and Train.loader.use_shared_memory to false."),
    ("unknown_config_key",
     re.compile(r"(the sub_keys can only be one of global_config|got an unexpected keyword argument "
                r"'?\w+'?|DataSet only support|only support|KeyError: '[^']+'|"
                r"NameError: name '\w+' is not defined)"),
     "the config has a key or a name the engine does not know (a misspelled section, class "
     "or transform name, or a missing required key).",
     "check the spelling of the key named above against the PaddleOCR 2.10 docs and the presets "
     "(`rectrain config presets`); -o overrides must name existing sections."),
    ("dictionary_head_mismatch",
     re.compile(r"(shape of model params .*head.* not matched|out_channels|"
                r"Tensor holds the wrong type|label.*out of range|index out of range.*character)", re.I),
     "the character dictionary does not match the model head (number of classes).",
     "use the dictionary the pretrained/checkpoint model was trained with, or fine-tune without "
     "Global.pretrained_model; check it with `rectrain data check-dict`."),
    ("missing_file",
     re.compile(r"(FileNotFoundError|No such file or directory|does not exists?!|"
                r"No Images in train dataset)", re.I),
     "a file the config points to is missing (or the label file lists no usable image).",
     "check Train/Eval label_file_list, data_dir and Global.character_dict_path (paths are "
     "relative to the folder you run rectrain from); validate with `rectrain data validate`."),
    ("engine_import_error",
     re.compile(r"(ModuleNotFoundError|ImportError): .*"),
     "the engine could not import one of its modules.",
     "reinstall the engine with ./setup.sh (or `rectrain doctor` to see what is missing)."),
    ("engine_crash",
     re.compile(r"(Segmentation fault|SIGSEGV|core dumped|Fatal Python error|C\+\+ Traceback)"),
     "the engine crashed inside Paddle.",
     "rerun with --resume; if it repeats, check `rectrain doctor` (driver, CUDA, Paddle versions) "
     "and report the tail of train.log."),
]

NAN_FIX = ("lower the learning rate (Optimizer.lr.learning_rate), add warmup (warmup_epoch), "
           "check labels for characters missing from the dictionary, or turn AMP off.")


class FailureClassifier:
    """Feed it every engine line; ask it after the engine exits."""

    def __init__(self, tail: int = 400, nan_patience: int = 3) -> None:
        self.tail: Deque[str] = collections.deque(maxlen=tail)
        self.nan_streak = 0
        self.nan_patience = nan_patience
        self.warnings: List[Failure] = []
        self.first_match: Optional[Failure] = None

    def feed(self, raw: str) -> Optional[Failure]:
        """Returns a Failure when the run must be stopped now (NaN loss)."""
        text = strip_line(raw)["text"] or ""
        self.tail.append(text)
        if "global_step:" in text and re.search(r"\bloss: (nan|inf|-inf)\b", text, re.I):
            self.nan_streak += 1
            if self.nan_streak >= self.nan_patience:
                return Failure("nan_loss", f"the loss is NaN/inf for {self.nan_streak} "
                                           "logged steps in a row.", NAN_FIX, text)
        elif "global_step:" in text:
            self.nan_streak = 0
        if "not matched with loaded params" in text and not self.warnings:
            self.warnings.append(Failure(
                "dictionary_head_mismatch",
                "some pretrained weights do not fit the model (usually the head: the dictionary "
                "has a different number of characters) and were not loaded.",
                "use the dictionary the pretrained model was trained with if you meant to keep "
                "its head; otherwise this is expected.", text))
        if self.first_match is None and not text.startswith("eval model"):
            for kind, pattern, message, fix in RULES:
                if pattern.search(text) and not _benign(kind, text):
                    self.first_match = Failure(kind, message, fix, text)
                    break
        return None

    def classify(self, returncode: int, oom: Optional[str] = None) -> Optional[Failure]:
        """The failure of a finished engine, or None if it succeeded. ``oom``: the kernel's word
        that it killed a process for memory during the run (:class:`OomWatch`), if any."""
        no_images = any("No Images in train dataset" in line for line in self.tail)
        if returncode == 0 and not no_images:
            return None
        if self.first_match is not None and (returncode != 0 or self.first_match.kind == "missing_file"):
            return self.first_match
        evidence = next((line for line in reversed(self.tail) if line.strip()), "")
        signum = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 160 else 0
        if oom:
            return Failure("out_of_memory", f"the kernel's OOM killer stopped the engine ({oom}): "
                                            "the machine (or container) ran out of memory.",
                           "lower Train.loader.batch_size_per_card or num_workers (each worker holds "
                           "decoded images), use a machine with more memory, then rerun with --resume.",
                           evidence)
        if signum:
            known = ("the kernel reported no out-of-memory kill" if oom is not None else
                     "whether the kernel killed it for memory could not be read here (no cgroup "
                     "counter or kernel log)")
            return Failure("killed", f"the engine was killed by signal {signum} "
                                     f"({_signal_name(signum)}; exit status {returncode}); {known}.",
                           "find what sent it (a supervisor, a time limit, `kill`; `dmesg` shows "
                           "kernel kills), then rerun with --resume.", evidence)
        return Failure("unknown", f"the engine failed (exit status {returncode}).",
                       "read the end of train.log in the run folder; rerun with --resume once "
                       "fixed.", evidence)


QUIET_KINDS = ("disk_full",)  # failures whose engine traceback stays in train.log only
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


class TracebackHold:
    """The engine's Python tracebacks, held back from the console until each block ends (its
    exception line, chained ones included): a block that shows a failure rectrain explains
    itself (:data:`QUIET_KINDS`: a full disk) is dropped, the message names train.log, which
    has it; any other block is shown as it was. Every other line passes at once (the loss
    lines users watch). ``feed`` and ``end`` return the lines to show now."""

    MAX_LINES = 1000  # a longer block is shown (and no longer held)

    def __init__(self) -> None:
        self.held: List[str] = []
        self.closing = False  # the exception line was seen; blank lines or a chained block may follow
        self.patterns = [pattern for kind, pattern, _, _ in RULES if kind in QUIET_KINDS]

    def feed(self, raw: str) -> List[str]:
        text = raw.rstrip("\r\n")
        if not self.held:
            if not text.startswith("Traceback (most recent call last)"):
                return [raw]
            self.held.append(raw)
            return []
        chain = text.startswith(_CHAINED + ("Traceback",))
        if self.closing and text.strip() and not chain:
            return self.end() + self.feed(raw)  # the block ended before this line
        self.held.append(raw)
        if text.strip():  # ``OSError: [Errno 28] ...`` closes it; a chained block reopens it
            self.closing = not chain and not text[0].isspace()
        return self.end() if len(self.held) > self.MAX_LINES else []

    def end(self) -> List[str]:
        """The held block's lines to show (none when it is one to keep quiet); call it at the
        end of the output too."""
        block, self.held, self.closing = self.held, [], False
        quiet = any(p.search(line) for line in block for p in self.patterns)
        return [] if quiet else block


def _benign(kind: str, text: str) -> bool:
    # lines that mention these words but are not failures
    if kind == "missing_file" and "Skipping import of the encryption module" in text:
        return True
    # a warning (pretrained head), reported separately
    return kind == "dictionary_head_mismatch" and "not matched with loaded params" in text


def append_problem_log(path: Union[str, Path], failure: Failure, *, context: str = "") -> None:
    """Append one entry (date, symptom, cause, fix) to a run's problem-log.md in one write."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    evidence = failure.evidence.strip().replace("`", "'")[:400]
    entry = (f"\n## {stamp} — {failure.kind}\n"
             f"- Symptom: `{evidence}`\n"
             f"- Cause: {failure.message}\n"
             f"- Fix: {failure.fix}\n"
             + (f"- Context: {context}\n" if context else ""))
    with open_append(p) as fh:
        fh.write(redact(entry))


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _cgroup_files(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> List[Path]:
    """The files holding this process's cgroup OOM-kill counter: v2 ``memory.events``, v1
    ``memory.oom_control`` (each ``oom_kill N``), own cgroup first, then the root one."""
    out: List[Path] = []
    for controllers, rel in own_cgroups(proc_cgroup):
        if not controllers:
            out.append(Path(root) / rel / "memory.events")
        elif "memory" in controllers:
            out.append(Path(root) / "memory" / rel / "memory.oom_control")
    out += [Path(root) / "memory.events", Path(root) / "memory" / "memory.oom_control"]
    return out


def read_oom_kills(files: Sequence[Path]) -> Optional[Tuple[Path, int]]:
    """``(file, oom_kill count)`` from the first readable counter file, else None."""
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError:
            continue
        m = re.search(r"^oom_kill (\d+)$", text, re.M)
        if m:
            return f, int(m.group(1))
    return None


class OomWatch:
    """Did the kernel kill something for memory while the engine ran? Reads the cgroup's
    ``oom_kill`` counter before and after, and (where readable) the kernel log for the engine's
    pid. ``evidence()``: a description when it did, "" when the sources say no, None when no
    source could be read."""

    def __init__(self, files: Optional[Sequence[Path]] = None, dmesg: Sequence[str] = ("dmesg",)) -> None:
        self.files = list(files) if files is not None else _cgroup_files()
        self.dmesg = list(dmesg)
        self.before = read_oom_kills(self.files)

    def _kernel_log(self, pids: Sequence[int]) -> Optional[str]:
        if not self.dmesg:
            return None
        try:
            out = subprocess.run(self.dmesg, capture_output=True, text=True, timeout=3).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        for line in reversed(out.splitlines()[-2000:]):
            for pid in pids:
                if re.search(rf"(Killed process {pid}\b|oom-kill:.*\bpid={pid}\b)", line):
                    return line.strip()
        return "" if out else None

    def evidence(self, pids: Sequence[int] = ()) -> Optional[str]:
        after = read_oom_kills([self.before[0]] if self.before else self.files)
        counted: Optional[str] = None
        if self.before is not None and after is not None:
            counted = ""
            if after[1] > self.before[1]:
                counted = f"{after[0]}: oom_kill {self.before[1]} -> {after[1]}"
        if counted:
            return counted
        logged = self._kernel_log([p for p in pids if p > 0])
        if logged:
            return f"kernel log: {logged}"
        if counted is None and logged is None:
            return None
        return ""
