"""Checks of the data a config will train on, with the engine's own rules:
images exist under ``data_dir``, label characters are in the dictionary, and labels fit
``max_text_length`` (the engine's label encoders drop longer samples without a word)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rectrain.data.findings import describe_char
from rectrain.data.labels import iter_labels_reporting
from rectrain.data.sniff import check_label_file, refuse_bom
from rectrain.errors import ConfigError, DataError

# Label encoder -> slots it reserves inside max_text_length (sos/eos...): a label is dropped
# when longer than max_text_length - reserve (ppocr/data/imaug/label_ops.py).
ENCODER_RESERVE = {
    "CTCLabelEncode": 0, "SRNLabelEncode": 0, "SATRNLabelEncode": 0, "SPINLabelEncode": 0,
    "AttnLabelEncode": 1, "SEEDLabelEncode": 1, "ViTSTRLabelEncode": 1,
    "ABINetLabelEncode": 1, "PRENLabelEncode": 1, "RFLLabelEncode": 1, "CPPDLabelEncode": 1,
    "NRTRLabelEncode": 2, "SARLabelEncode": 2, "ParseQLabelEncode": 3,
}


def label_reserve(transforms: List[Tuple[int, str, Dict[str, Any]]]) -> Tuple[int, str]:
    """The strictest encoder of a transform list: ``(reserve, encoder name)``."""
    best = (0, "CTCLabelEncode")
    for _, name, params in transforms:
        names = [name]
        if name == "MultiLabelEncode":
            names = ["CTCLabelEncode", str(params.get("gtc_encode") or "SARLabelEncode")]
        for n in names:
            r = ENCODER_RESERVE.get(n, 0)
            if r > best[0]:
                best = (r, n)
    return best


@dataclass
class LabelScan:
    mode: str
    files: List[str]
    samples: int = 0
    unreadable: int = 0  # lines the engine cannot split into path + label
    unreadable_examples: List[str] = field(default_factory=list)
    missing_images: int = 0
    missing_examples: List[str] = field(default_factory=list)
    unknown_samples: int = 0
    unknown_chars: Counter = field(default_factory=Counter)
    unknown_examples: List[str] = field(default_factory=list)
    lengths: Counter = field(default_factory=Counter)
    no_size_fields: int = 0  # MultiScaleDataSet ds_width needs path, label, w, h

    @property
    def longest(self) -> int:
        return max(self.lengths) if self.lengths else 0

    def too_long(self, limit: int) -> int:
        return sum(c for n, c in self.lengths.items() if n > limit)


def scan_labels(mode: str, files: Sequence[str], data_dir: str, chars: frozenset,
                delimiter: str = "\t", check_images: bool = True,
                need_size_fields: bool = False) -> LabelScan:
    scan = LabelScan(mode=mode, files=list(files))
    for file in files:
        for rec in _iter(file, delimiter):
            where = f"{file}:{rec[0]}"
            if rec[1] is None or rec[2] is None:
                scan.unreadable += 1
                if len(scan.unreadable_examples) < 3:
                    scan.unreadable_examples.append(where)
                continue
            _, path, label, nfields = rec
            scan.samples += 1
            if need_size_fields and nfields != 4:
                scan.no_size_fields += 1
            if check_images:
                for p in _image_paths(path):
                    if not os.path.exists(os.path.join(data_dir, p)):
                        scan.missing_images += 1
                        if len(scan.missing_examples) < 5:
                            scan.missing_examples.append(f"{where}: {os.path.join(data_dir, p)}")
                        break
            unknown = [ch for ch in label if ch not in chars]
            if unknown:
                scan.unknown_samples += 1
                scan.unknown_chars.update(unknown)
                if len(scan.unknown_examples) < 5:
                    scan.unknown_examples.append(
                        f"{where} {label!r}: " + ", ".join(describe_char(c)
                                                           for c in dict.fromkeys(unknown)))
            scan.lengths[len(label)] += 1
    return scan


def _iter(file: str, delimiter: str):
    """``(line, path, label, fields)`` as the engine splits lines (CR/BOM handled as the data
    library reports them)."""
    if delimiter == "\t":
        for rec in iter_labels_reporting(file):
            nfields = 2 + rec.extra_fields if rec.parsed else 0
            yield rec.line, rec.path, rec.label, nfields
        return
    with open(file, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            try:
                parts = raw.decode("utf-8").strip("\n").split(delimiter)
            except UnicodeDecodeError:
                yield no, None, None, 0
                continue
            if len(parts) < 2:
                yield no, None, None, 0
            else:
                yield no, parts[0], parts[1], len(parts)


def has_size_fields(files: Sequence[str], delimiter: str = "\t") -> bool:
    """Whether the first readable line of each file has ``path, label, width, height``."""
    for file in files:
        for rec in _iter(file, delimiter):
            if rec[1] is not None:
                if rec[3] != 4:
                    return False
                break
    return True


def _image_paths(path: str) -> List[str]:
    if path.startswith("["):
        try:
            items = json.loads(path)
            if isinstance(items, list) and items:
                return [str(i) for i in items]
        except ValueError:
            pass
    return [path]


def raise_for(scans: List[LabelScan], dict_path: str, max_len: int, reserve: int,
              encoder: str, max_len_given: bool) -> List[str]:
    """Raise for what would break or silently degrade training; return warnings."""
    warnings: List[str] = []
    for s in scans:
        if s.samples == 0:
            raise DataError(f"no usable samples in the {s.mode} label file(s) "
                            f"({', '.join(s.files)}).",
                            "each line must be `image_path<TAB>label`; check with "
                            "`rectrain data validate`.", path=s.files[0])
        if s.lengths.get(0):
            warnings.append(f"{s.mode}: {s.lengths[0]} empty label(s); the engine skips them "
                            "and draws another sample.")
        if s.unreadable:
            warnings.append(f"{s.mode}: {s.unreadable} line(s) the engine cannot split into "
                            f"image path and label (it skips them), e.g. "
                            f"{', '.join(s.unreadable_examples)}; check with "
                            "`rectrain data validate`.")
    for s in scans:
        if s.missing_images:
            raise DataError(
                f"{s.mode}: {s.missing_images} of {s.samples} image(s) referenced by the label "
                f"file(s) do not exist, e.g. {'; '.join(s.missing_examples[:3])}.",
                "image paths in a label file are relative to --images-root (default: the label "
                "file's folder); pass the right --images-root or fix the paths.",
                path=s.files[0])
        if s.no_size_fields:
            raise ConfigError(
                f"{s.mode}.dataset.ds_width: true needs label lines `path<TAB>label<TAB>width"
                f"<TAB>height`; {s.no_size_fields} of {s.samples} line(s) have no size fields.",
                f"add the sizes, or --set {s.mode}.dataset.ds_width=false.")
    for s in scans:
        if s.unknown_samples:
            top = ", ".join(f"{describe_char(c)} x{n}" for c, n in s.unknown_chars.most_common(8))
            space = (" A space is among them: set Global.use_space_char true (--set "
                     "Global.use_space_char=true) or add a space line to the dictionary."
                     ) if " " in s.unknown_chars else ""
            raise DataError(
                f"{s.mode}: {s.unknown_samples} of {s.samples} label(s) contain characters "
                f"that are not in the dictionary {dict_path} (the engine silently drops them "
                f"from the labels, so the model learns wrong text): {top}. First: "
                f"{'; '.join(s.unknown_examples[:3])}.{space}",
                "add the characters to the dictionary (`rectrain data dict LABELS... -o dict.txt`"
                ", or `--base OFFICIAL_DICT` to keep a pretrained head's order), or remove those "
                "samples.", path=dict_path)
    limit = max_len - reserve
    longest = max(s.longest for s in scans)
    for s in scans:
        dropped = s.too_long(limit)
        if dropped:
            extra = (f" ({encoder} keeps {reserve} slot(s) for start/end marks, so labels may "
                     f"have at most {limit} characters)") if reserve else ""
            raise ConfigError(
                f"Global.max_text_length: {max_len} is shorter than {dropped} of {s.samples} "
                f"{s.mode} label(s){extra}; the engine would drop those samples without a "
                f"word. Longest label: {s.longest} code points (Thai vowels and tone marks "
                "count one each).",
                f"pass --max-text-length {longest + reserve}"
                + (" (you passed a smaller value)" if max_len_given else "")
                + ", or remove the longest samples.")
    return warnings


def resolve_inputs(label_files: Sequence[str], images_root: Optional[str],
                   flag: str) -> Tuple[List[str], str, bool]:
    """``(absolute label files, data_dir, is_lmdb)`` for one mode."""
    if not label_files:
        raise ConfigError(f"{flag}: no label file given.",
                          f"pass {flag} FILE (lines `image_path<TAB>label`).")
    files: List[str] = []
    for f in label_files:
        p = Path(f).expanduser()
        if p.is_dir() and (p / "data.mdb").exists():
            return [str(p.resolve())], str(p.resolve()), True
        if not p.is_file():
            raise DataError(f"{flag}: label file not found.",
                            "pass an existing label file (lines `image_path<TAB>label`).",
                            path=str(p))
        check_label_file(p, what=f"{flag} label file")
        refuse_bom(p, what=f"{flag} label file")
        files.append(str(p.resolve()))
    if images_root:
        root = Path(images_root).expanduser()
        if not root.is_dir():
            raise DataError("--images-root: folder not found.",
                            "pass the folder the image paths in the label files are relative to.",
                            path=str(root))
        return files, str(root.resolve()), False
    parents = {str(Path(f).parent) for f in files}
    if len(parents) > 1:
        raise ConfigError(
            f"{flag}: the label files are in different folders ({', '.join(sorted(parents))}) "
            "and the engine joins every image path to one data_dir.",
            "pass --images-root DIR, the folder the image paths in all label files are relative "
            "to.")
    return files, parents.pop(), False
