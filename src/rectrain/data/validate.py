"""``rectrain data validate``: catch every silent data failure before a GPU is paid for.

Label files are streamed (constant memory apart from 24 bytes per line for the duplicate
check); images are checked in a process pool over chunks, a bounded number in flight.
"""

from __future__ import annotations

import hashlib
import os
import sys
import unicodedata
from array import array
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from rectrain.data import codes
from rectrain.data.dictionary import Dictionary, read_dictionary
from rectrain.data.findings import ERROR, Finding, describe_chars, show_value
from rectrain.data.images import MIN_HEIGHT, MIN_WIDTH, check_image, load_decoder, quiet_worker
from rectrain.data.labels import LabelLine, iter_label_file, parse_line
from rectrain.data.official_dicts import official_findings, official_name
from rectrain.data.sniff import check_label_file
from rectrain.data.text import (
    invisible_chars,
    is_normalized,
    label_form,
    name_chars,
    normalize_label,
    thai_issues,
    unicode_form,
)
from rectrain.errors import DataError, UserError
from rectrain.fsutil import refuse_special, special_kind
from rectrain.logs import get_logger
from rectrain.outputs import atomic_open, claim_output_file, record_output, same_file, write_json

PathLike = Union[str, "os.PathLike[str]"]
log = get_logger("data.validate")

CHUNK = 256
LINE_BITS = 40  # key = file_index << 40 | line


def _key(file_idx: int, line: int) -> int:
    return (file_idx << LINE_BITS) | line


def _h64(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little")


@dataclass
class ValidationReport:
    label_files: List[str]
    samples: int = 0
    images_checked: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    findings: List[Finding] = field(default_factory=list)
    stats: Dict[str, Any] = field(default_factory=dict)
    dict_path: Optional[str] = None
    clean_path: Optional[str] = None
    clean_images_root: Optional[str] = None
    clean_lines: int = 0
    omitted_findings: int = 0

    @property
    def errors(self) -> int:
        return sum(n for c, n in self.counts.items() if codes.severity(c) == ERROR)

    @property
    def warnings(self) -> int:
        return sum(n for c, n in self.counts.items() if codes.severity(c) != ERROR)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "samples": self.samples,
            "images_checked": self.images_checked,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings],
            "omitted_findings": self.omitted_findings,
            "stats": self.stats,
            "label_files": self.label_files,
            "dict": self.dict_path,
            "clean": ({"path": self.clean_path, "lines": self.clean_lines,
                       "images_root": self.clean_images_root} if self.clean_path else None),
        }

    def summary(self, examples: int = 3) -> str:
        """Human summary grouped by code, with the first few examples of each."""
        lines = [f"{self.samples} samples in {len(self.label_files)} label file(s), "
                 f"{self.images_checked} images checked: {self.errors} errors, {self.warnings} warnings."]
        if not self.counts:
            lines.append("no problems found.")
        by_code: Dict[str, List[Finding]] = {}
        for f in self.findings:
            by_code.setdefault(f.code, []).append(f)
        for code in sorted(self.counts, key=lambda c: (codes.severity(c) != ERROR, codes.ORDER.index(c)
                                                       if c in codes.ORDER else 99)):
            n = self.counts[code]
            sev = codes.severity(code)
            lines.append(f"  {sev:<7} {code:<18} {n:>8}")
            shown = by_code.get(code, [])[:examples]
            for f in shown:
                lines.append(f"          {f.where()}: {f.message}")
            if n > len(shown):
                lines.append(f"          ... {n - len(shown)} more (see --json)")
            if shown:
                lines.append(f"          fix: {shown[0].fix}")
        if self.omitted_findings:
            lines.append(f"({self.omitted_findings} findings past the per-code listing limit are counted "
                         "but not listed.)")
        ll, ih, iw = (self.stats.get(k) or {} for k in ("label_length", "image_height", "image_width"))
        if ll:
            lines.append(f"label length (code points): min {ll['min']}, median {ll['p50']}, 95% "
                         f"{ll['p95']}, max {ll['max']}; {self.stats.get('distinct_chars', 0)} distinct "
                         "characters.")
        if ih and iw:
            lines.append(f"images: height {ih['min']}-{ih['max']} px (median {ih['p50']}), width "
                         f"{iw['min']}-{iw['max']} px (median {iw['p50']}).")
        if (self.stats.get("dictionary") or {}).get("official"):
            lines.append(f"dictionary: {self.stats['dictionary']['official']}")
        form = (self.stats.get("dictionary") or {}).get("form")
        if form in ("NFD", "mixed"):
            lines.append(f"dictionary: Unicode {form} (labels are compared with it as written and "
                         "in NFC; NFC for both is the standard).")
        if self.clean_path:
            lines.append(f"clean label file: {self.clean_path} ({self.clean_lines} lines; image paths "
                         f"relative to {self.clean_images_root})")
        return "\n".join(lines)


class _Collector:
    def __init__(self, max_per_code: int) -> None:
        self.max_per_code = max_per_code
        self.counts: Counter = Counter()
        self.findings: List[Finding] = []
        self.omitted = 0
        self.error_keys = array("Q")

    def add(self, code: str, file: str, line: Optional[int], message: str, *,
            value: Optional[str] = None, key: Optional[int] = None) -> None:
        self.counts[code] += 1
        sev = codes.severity(code)
        if sev == ERROR and key is not None and code not in codes.CLEANABLE:
            self.error_keys.append(key)
        if self.counts[code] > self.max_per_code:
            self.omitted += 1
            return
        self.findings.append(Finding(code, file, line, message, codes.fix(code), sev, value))

    def add_finding(self, f: Finding) -> None:
        self.counts[f.code] += 1
        if self.counts[f.code] > self.max_per_code:
            self.omitted += 1
            return
        self.findings.append(f)


class _Stats:
    def __init__(self) -> None:
        self.label_len: Counter = Counter()
        self.chars: Counter = Counter()
        self.heights: Counter = Counter()
        self.widths: Counter = Counter()
        self.aspect_sum = 0.0
        self.images = 0

    def add_label(self, label: str) -> None:
        self.label_len[len(label)] += 1
        self.chars.update(label)

    def add_image(self, w: int, h: int) -> None:
        if w and h:
            self.heights[h] += 1
            self.widths[w] += 1
            self.aspect_sum += w / h
            self.images += 1

    def merge(self, other: _Stats) -> None:
        self.label_len.update(other.label_len)
        self.chars.update(other.chars)
        self.heights.update(other.heights)
        self.widths.update(other.widths)
        self.aspect_sum += other.aspect_sum
        self.images += other.images

    @staticmethod
    def _summary(c: Counter) -> Dict[str, Any]:
        total = sum(c.values())
        if not total:
            return {}
        keys = sorted(c)
        mean = sum(k * v for k, v in c.items()) / total
        out = {"min": keys[0], "max": keys[-1], "mean": round(mean, 2)}
        for q, name in ((0.5, "p50"), (0.95, "p95")):
            acc, target = 0, q * total
            for k in keys:
                acc += c[k]
                if acc >= target:
                    out[name] = k
                    break
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {
            "label_length": self._summary(self.label_len),
            "label_length_histogram": {str(k): v for k, v in sorted(self.label_len.items())},
            "distinct_chars": len(self.chars),
            "top_chars": [[c, n] for c, n in self.chars.most_common(30)],
            "image_height": self._summary(self.heights),
            "image_width": self._summary(self.widths),
            "image_aspect_mean": round(self.aspect_sum / self.images, 3) if self.images else None,
        }


def _resolve(root: str, p: str) -> Optional[str]:
    """Absolute image path under ``root``, or None when ``p`` leaves it (never opened)."""
    drive = len(p) > 2 and p[0].isalpha() and p[1] == ":" and p[2] in "\\/"
    if os.path.isabs(p) or p.startswith("\\") or drive:
        return None
    norm = os.path.normpath(p)
    if norm == ".." or norm.startswith(".." + os.sep):
        return None
    return os.path.join(root, norm)


AddFn = Callable[[str, int, str, Optional[str]], None]


def _check_label(label: str, line: int, add: AddFn, encodable: Optional[frozenset],
                 max_text_length: Optional[int], multihead: bool = False) -> None:
    if label.strip() == "":
        add("empty-label", line, "empty label" if label == "" else
            f"label is only whitespace {show_value(label)}", label)
        return
    if label != label.strip():
        add("whitespace-edge", line, f"label {show_value(label)} starts or ends with whitespace.", label)
    hidden = invisible_chars(label)
    if hidden:
        add("invisible-char", line, f"label {show_value(label)} holds {name_chars(hidden)}: invisible "
            "(zero-width or format) characters.", label)
    if not is_normalized(label):
        # checked below in its normalized form, which --write-clean writes, unless the
        # dictionary holds the label's code points as written (a dictionary in the same form)
        raw, label = label, normalize_label(label)
        why = thai_issues(raw) or [f"in Unicode {label_form(raw)}, not NFC"]
        note = ""
        if encodable is not None:
            lost = [c for c in raw if c not in encodable and c != " " and c not in label]
            as_written = all(c in encodable or c == " " for c in raw)
            if as_written and any(c not in encodable and c != " " for c in label):
                note = (" The dictionary is in the same decomposed form, so the engine reads this "
                        "label as written; keep one form for both (NFC labels from --write-clean "
                        "with a dictionary rebuilt from them by `rectrain data dict`).")
                label = raw
            elif lost:  # the engine reads the file as written: these are dropped
                note = (f" As written, the engine drops {describe_chars(lost)} (not in the "
                        "dictionary); train on the --write-clean output.")
                add("dropped-as-written", line, f"{describe_chars(lost)} not in the dictionary, in "
                    f"label {show_value(raw)} as written: the engine reads the file as written and "
                    "drops them.", raw)
        add("not-nfc", line, f"label {show_value(raw)}: {'; '.join(why)}; normalized: "
            f"{show_value(normalize_label(raw))}.{note}", raw)
    if encodable is not None:
        unknown = [c for c in label if c not in encodable and c != " "]
        if unknown:
            kept = sum(1 for c in label if c in encodable)
            tail = (" The whole sample is dropped (no known character left)." if kept == 0 else
                    f" The engine trains on {kept} of {len(label)} characters.")
            nfd = unicodedata.normalize("NFD", "".join(unknown))
            if all(c in encodable for c in nfd) and nfd != "".join(unknown):
                tail += (" The dictionary holds their decomposed (NFD) form: the dictionary is in "
                         f"NFD, this label in {label_form(label)}; rebuild the dictionary from the "
                         "labels (`rectrain data dict`) so that both are NFC.")
            add("unknown-char", line, f"{describe_chars(unknown)} not in the dictionary, in label "
                f"{show_value(label)}.{tail}", label)
        if " " in label and " " not in encodable:
            add("space-not-in-dict", line, f"label {show_value(label)} has a space but the dictionary "
                "has none and use_space_char is off.", label)
    if max_text_length is not None:
        known = len(label) if encodable is None else sum(1 for c in label if c in encodable)
        if len(label) > max_text_length:
            add("too-long", line, f"label has {len(label)} code points, more than max_text_length "
                f"{max_text_length}: the engine skips this sample.", label)
        elif multihead and known >= max_text_length - 1:
            add("too-long", line, f"label has {known} encodable code points; with a MultiHead model "
                f"(CTC + NRTR/SAR) the engine skips samples with max_text_length - 1 = "
                f"{max_text_length - 1} or more.", label)


@dataclass
class _Opts:
    encodable: Optional[frozenset]
    max_text_length: Optional[int]
    multihead: bool
    check_images: bool
    min_height: int
    min_width: int


_OPTS: Optional[_Opts] = None


def _init_worker(opts: _Opts, quiet: bool = False) -> None:
    global _OPTS
    _OPTS = opts
    if quiet:
        quiet_worker()


@dataclass
class _Partial:
    """What one chunk of lines produced (returned from a worker process)."""

    findings: List[Tuple[str, int, str, Optional[str]]] = field(default_factory=list)
    samples: int = 0
    images_checked: int = 0
    path_hashes: Any = field(default_factory=lambda: array("Q"))
    label_hashes: Any = field(default_factory=lambda: array("Q"))
    keys: Any = field(default_factory=lambda: array("Q"))
    stats: _Stats = field(default_factory=lambda: _Stats())


def _process_chunk(file_idx: int, root: str, start_line: int, raws: List[bytes]) -> _Partial:
    """Parse and check a chunk of lines (label checks and image checks); runs in a worker."""
    opts = _OPTS
    assert opts is not None
    out = _Partial()
    stats = out.stats

    def add(code: str, line: int, message: str, value: Optional[str] = None) -> None:
        out.findings.append((code, line, message, value))

    for i, raw in enumerate(raws):
        rec = parse_line(raw, start_line + i)
        line = rec.line
        blank = False
        for code, detail in rec.issues:
            add(code, line, _parse_message(code, detail, rec),
                detail if code in ("no-tab", "extra-tab") else None)
            blank = blank or code == "blank-line"
        if blank:
            continue
        out.samples += 1
        if rec.path is None or rec.label is None:
            continue
        if not rec.extra_fields:
            stats.add_label(rec.label)
            _check_label(rec.label, line, add, opts.encodable, opts.max_text_length, opts.multihead)
        key = _key(file_idx, line)
        for p in rec.image_paths():
            if not p.strip():
                add("missing-image", line, "the image path is empty.", p)
                continue
            full = _resolve(root, p)
            special = special_kind(os.path.join(root, p))
            if special:  # never opened (a FIFO waits forever, /dev/zero never ends)
                add("unreadable-image", line, f"image path {p!r} is {special}, not a regular file; it "
                    "was not opened.", p)
                continue
            if full is None:
                add("path-escape", line, f"image path {p!r} is absolute or leaves the images root; it "
                    "was not opened.", p)
                continue
            if not rec.extra_fields:  # the label of such a line is uncertain: no duplicate check
                out.path_hashes.append(_h64(full))
                out.label_hashes.append(_h64(rec.label))
                out.keys.append(key)
            if opts.check_images:
                out.images_checked += 1
                img_code, detail, w, h = check_image(full, opts.min_height, opts.min_width)
                stats.add_image(w, h)
                if img_code:
                    if img_code == "missing-image" and "\\" in p:
                        detail += " (the path uses backslashes; write it with /)"
                    add(img_code, line, f"{p!r}: {detail}.", p)
    return out


def _iter_chunks(name: str, size: int) -> Iterator[Tuple[int, List[bytes]]]:
    with open(name, "rb") as fh:
        start, buf = 1, []
        for raw in fh:
            buf.append(raw)
            if len(buf) >= size:
                yield start, buf
                start, buf = start + len(buf), []
        if buf:
            yield start, buf


def validate_recognition_annotation_format(
    label_files: Union[PathLike, Sequence[PathLike]],
    *,
    images_root: Optional[PathLike] = None,
    dict_path: Optional[PathLike] = None,
    max_text_length: Optional[int] = None,
    use_space_char: bool = False,
    json_out: Optional[PathLike] = None,
    write_clean: Optional[PathLike] = None,
    workers: Optional[int] = None,
    progress: bool = True,
    check_images: bool = True,
    max_findings_per_code: int = 1000,
    multihead: bool = False,
    min_height: int = MIN_HEIGHT,
    min_width: int = MIN_WIDTH,
) -> ValidationReport:
    """Validate recognition label files (and their images and dictionary).

    Lines are read in chunks that worker processes parse and check (labels and images); the
    main process merges the results in order. At most 4 chunks per worker are in flight.
    ``max_findings_per_code`` bounds the findings kept in memory (counts stay exact).
    ``multihead``: the config's head is MultiHead (PP-OCRv4/v5: CTC + NRTR or SAR), whose
    second encoder also drops samples with max_text_length - 1 or more known characters.

    Raises UserError/DataError when it cannot run (a label file that cannot be opened, a
    dictionary the engine could not read); data problems are findings in the report.
    """
    files = _check_arguments(label_files, images_root, dict_path, max_text_length, json_out, write_clean)
    col = _Collector(max_findings_per_code)
    stats = _Stats()
    report = ValidationReport(label_files=files, dict_path=str(dict_path) if dict_path else None)
    dictionary: Optional[Dictionary] = None
    if dict_path is not None:
        dictionary = read_dictionary(dict_path, use_space_char=use_space_char)
        for finding in dictionary.findings + official_findings(dict_path):
            col.add_finding(finding)
    opts = _Opts(dictionary.encodable if dictionary is not None else None, max_text_length, multihead,
                 check_images, min_height, min_width)

    path_hashes, label_hashes, keys = array("Q"), array("Q"), array("Q")
    n_workers = workers if workers is not None else default_workers()
    pool: Optional[ProcessPoolExecutor] = None
    if n_workers > 1:
        if check_images:
            load_decoder()  # once here: forked workers inherit it instead of each importing OpenCV
        pool = ProcessPoolExecutor(max_workers=n_workers, initializer=_init_worker,
                                   initargs=(opts, True))
    else:
        _init_worker(opts)
    pending: Deque[Tuple[int, Future]] = deque()
    max_in_flight = max(2, 4 * n_workers)
    chunk_lines = CHUNK if check_images else 8 * CHUNK

    def merge(file_idx: int, part: _Partial) -> None:
        name = files[file_idx]
        for code, line, message, value in part.findings:
            col.add(code, name, line, message, value=value, key=_key(file_idx, line))
        report.samples += part.samples
        report.images_checked += part.images_checked
        path_hashes.extend(part.path_hashes)
        label_hashes.extend(part.label_hashes)
        keys.extend(part.keys)
        stats.merge(part.stats)

    bar = _progress(files) if progress else None
    try:
        for file_idx, name in enumerate(files):
            root = os.path.abspath(str(images_root) if images_root is not None
                                   else os.path.dirname(os.path.abspath(name)))
            for start, raws in _iter_chunks(name, chunk_lines):
                if bar is not None:
                    bar.advance(sum(len(r) for r in raws))
                if pool is None:
                    merge(file_idx, _process_chunk(file_idx, root, start, raws))
                    continue
                pending.append((file_idx, pool.submit(_process_chunk, file_idx, root, start, raws)))
                while len(pending) >= max_in_flight:
                    fidx, fut = pending.popleft()
                    merge(fidx, fut.result())
        while pending:
            fidx, fut = pending.popleft()
            merge(fidx, fut.result())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.stop()
    _duplicates(path_hashes, label_hashes, keys, files, col)
    _fill_values(files, col.findings)
    _fill_report(report, col, stats, files, dictionary, dict_path, use_space_char)
    if write_clean is not None:
        report.clean_path = str(write_clean)
        report.clean_lines, report.clean_images_root = _write_clean(files, images_root, col.error_keys,
                                                                    write_clean)
        record_output(write_clean, command="data validate")
    if json_out is not None:
        write_json(json_out, report.to_dict())
        record_output(json_out, command="data validate")
    return report


def default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _parse_message(code: str, detail: str, rec: LabelLine) -> str:
    if code == "not-utf8":
        return f"line is not valid UTF-8 ({detail}); the engine fails on it and skips the sample."
    if code == "bom":
        return "file starts with a UTF-8 byte-order mark (U+FEFF)."
    if code == "crlf":
        return "line ends with CRLF; the engine keeps the CR (U+000D) as the last label character."
    if code == "blank-line":
        return "blank line."
    if code == "no-tab":
        return f"no TAB between image path and label: {show_value(detail)}."
    if code == "extra-tab":
        return f"{rec.extra_fields} extra TAB(s); the engine uses only {rec.label!r} as the label."
    return code


def _duplicates(path_hashes: array, label_hashes: array, keys: array, files: List[str],
                col: _Collector) -> None:
    """Same image listed again: same label -> duplicate, another label -> conflicting-label."""
    import numpy as np

    if len(keys) < 2:
        return
    ph = np.frombuffer(path_hashes, dtype=np.uint64)
    lh = np.frombuffer(label_hashes, dtype=np.uint64)
    ks = np.frombuffer(keys, dtype=np.uint64)
    order = np.lexsort((ks, ph))
    ph_s = ph[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = ph_s[1:] == ph_s[:-1]
    if not repeat.any():
        return
    idx = np.arange(len(order))
    first = np.where(repeat, 0, idx)
    first = np.maximum.accumulate(first)
    mask = (1 << LINE_BITS) - 1
    for pos in np.nonzero(repeat)[0]:
        cur, ref = int(order[pos]), int(order[first[pos]])
        k, k0 = int(ks[cur]), int(ks[ref])
        if k == k0:
            continue  # the same line listing the same image twice
        name = files[k >> LINE_BITS]
        ref_where = f"line {k0 & mask}" + ("" if (k0 >> LINE_BITS) == (k >> LINE_BITS)
                                            else f" of {files[k0 >> LINE_BITS]}")
        if lh[cur] == lh[ref]:
            col.add("duplicate", name, k & mask, f"same image and label as {ref_where}.", key=k)
        else:
            col.add("conflicting-label", name, k & mask, f"same image as {ref_where} with a different "
                    "label.", key=k)


def _fill_values(files: List[str], findings: List[Finding]) -> None:
    """Give duplicate/conflicting-label findings their line's text as ``value`` (one more read)."""
    codes_ = ("duplicate", "conflicting-label")
    todo: Dict[Tuple[str, int], Finding] = {(f.file, f.line or 0): f for f in findings
                                            if f.code in codes_ and f.value is None}
    if not todo:
        return
    for name in dict.fromkeys(f for f, _ in todo):
        last = max(line for f, line in todo if f == name)
        for rec in iter_label_file(name):
            if rec.line > last:
                break
            hit = todo.get((name, rec.line))
            if hit is not None and rec.path is not None:
                hit.value = f"{rec.path}\t{rec.label}"
                hit.message = f"{rec.path!r} with label {show_value(rec.label or '')}: {hit.message}"


def _write_clean(files: List[str], images_root: Optional[PathLike], error_keys: array,
                 out: PathLike) -> Tuple[int, str]:
    """Label file without the error lines: NFC-normalized, no BOM, no CR, LF line ends.

    Returns (lines written, images root of the clean file). When the label files have different
    images roots, paths are rewritten relative to the roots' common folder.
    """
    import numpy as np

    errs = np.unique(np.frombuffer(error_keys, dtype=np.uint64)) if len(error_keys) else None
    roots = [os.path.abspath(str(images_root)) if images_root is not None
             else os.path.dirname(os.path.abspath(f)) for f in files]
    common = roots[0] if len(set(roots)) == 1 else os.path.commonpath(roots)
    written = 0
    with atomic_open(out, "w") as fh:
        for file_idx, name in enumerate(files):
            root = roots[file_idx]
            for rec in iter_label_file(name):
                if rec.path is None or rec.label is None:
                    continue
                key = _key(file_idx, rec.line)
                if errs is not None:
                    pos = int(np.searchsorted(errs, key))
                    if pos < len(errs) and int(errs[pos]) == key:
                        continue
                path = rec.path
                if root != common and not path.startswith("["):
                    path = os.path.relpath(os.path.join(root, path), common)
                fh.write(f"{path}\t{normalize_label(rec.label)}\n")
                written += 1
    return written, common


class _Bar:
    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("validating"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("validate", total=total)
        self.pending = 0
        self.progress.start()

    def advance(self, n: int) -> None:
        self.pending += n
        if self.pending >= 1 << 20:
            self.progress.advance(self.task, self.pending)
            self.pending = 0

    def stop(self) -> None:
        self.progress.stop()


def _progress(files: List[str]) -> Optional[_Bar]:
    total = sum(Path(f).stat().st_size for f in files)
    if total < (4 << 20) or not sys.stderr.isatty():
        return None
    return _Bar(total)


def _check_arguments(label_files: Union[PathLike, Sequence[PathLike]], images_root: Optional[PathLike],
                     dict_path: Optional[PathLike], max_text_length: Optional[int],
                     json_out: Optional[PathLike], write_clean: Optional[PathLike]) -> List[str]:
    """The label files as strings, after every check that refuses to start (missing or
    unreadable files, an output over an input, a bad images root or max_text_length)."""
    if isinstance(label_files, (str, os.PathLike)):
        label_files = [label_files]
    files = [str(f) for f in label_files]
    if not files:
        raise UserError("no label file given.", "pass at least one label file.")
    for f in files:
        refuse_special(f, what="label file")
        if not os.path.isfile(f):
            raise DataError("label file not found." if not os.path.exists(f) else "not a file.",
                            "check the path.", path=f)
        if not os.access(f, os.R_OK):
            raise DataError("label file is not readable.", "check its permissions.", path=f)
        check_label_file(f)
    inputs = [("label file", f) for f in files] + [("dictionary", dict_path)]
    if json_out is not None:
        claim_output_file(json_out, command="data validate", flag="--json", inputs=inputs, kind="json")
    if write_clean is not None:
        claim_output_file(write_clean, command="data validate", flag="--write-clean", inputs=inputs)
    if json_out is not None and write_clean is not None and same_file(json_out, write_clean):
        raise UserError(f"--json and --write-clean name the same file ({json_out}).",
                        "write the report and the clean label file to two different paths.")
    if images_root is not None and not os.path.isdir(images_root):
        raise DataError("images root is not a folder.", "pass the folder the label paths are "
                        "relative to.", path=str(images_root))
    if max_text_length is not None and max_text_length < 1:
        raise UserError(f"max_text_length must be positive, got {max_text_length}.",
                        "pass the value of Global.max_text_length of the training config.")
    return files


def _fill_report(report: ValidationReport, col: _Collector, stats: _Stats, files: List[str],
                 dictionary: Optional[Dictionary], dict_path: Optional[PathLike],
                 use_space_char: bool) -> None:
    """Counts, findings in reading order, statistics and the dictionary's facts."""
    report.counts = dict(sorted(col.counts.items(), key=lambda kv: codes.ORDER.index(kv[0])
                                if kv[0] in codes.ORDER else 99))
    order = {c: i for i, c in enumerate(codes.ORDER)}
    report.findings = sorted(col.findings, key=lambda f: (0 if f.code.startswith("dict-") else 1,
                                                          files.index(f.file) if f.file in files else -1,
                                                          f.line or 0, order.get(f.code, 99)))
    report.omitted_findings = col.omitted
    report.stats = stats.to_dict()
    if dictionary is not None:
        report.stats["dictionary"] = {"entries": len(dictionary.chars),
                                      "ctc_classes": dictionary.num_classes_ctc,
                                      "form": unicode_form(dictionary.chars),
                                      "use_space_char": use_space_char,
                                      "official": official_name(dict_path)}
