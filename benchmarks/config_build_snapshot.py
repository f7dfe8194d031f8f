"""Record what `rectrain config build` writes for every preset and every official config, with
several variants each, so a refactor can prove it changed nothing (byte for byte, apart from the
timestamp in line 1 of OUT.yml).

Usage (run the two sides one after the other, never side by side: see docs/problem-log.md,
2026-11-30, "Comparing built configs before/after a refactor"):

    venv/bin/python benchmarks/config_build_snapshot.py record --src /tmp/before/src --out /tmp/snap-before
    venv/bin/python benchmarks/config_build_snapshot.py record --src src --out /tmp/snap-after
    venv/bin/python benchmarks/config_build_snapshot.py compare /tmp/snap-before /tmp/snap-after

Each case runs `python -m rectrain config build ...` with PYTHONPATH=SRC in one fixed work folder
(the built config holds absolute paths, so both sides must write to the same place) and keeps
OUT.yml, OUT.base.yml, OUT.diff.md, the JSON printed, stderr and the exit code. The data (a few
rendered words, a dictionary, stand-in .pdparams weights) is made once in that folder and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = (ROOT / ".." / "shared" / "paddleocr-configs").resolve()
WORK = Path("/tmp/rectrain-config-snapshot-work")
PRESETS = ["crnn-mv3", "svtr-tiny", "ppocrv4-mobile", "ppocrv5-mobile", "ppocrv5-server",
           "th-ppocrv5-mobile"]
WORDS = ["สวัสดี", "ไทย", "abc", "ok", "ทดสอบ", "hello", "บ้าน", "น้ำ", "12", "ข้าว", "ดี", "cat"]


def make_data(root: Path) -> None:
    """Label files, images, a dictionary and stand-in weights, deterministic."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    if (root / "done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    (root / "img").mkdir(parents=True)
    try:
        import fontpkg_sarabun

        font = ImageFont.truetype(str(Path(fontpkg_sarabun.__file__).parent / "files"
                                      / "Sarabun-Regular.ttf"), 22)
    except (ImportError, OSError):
        font = ImageFont.load_default()
    lines = []
    for i, word in enumerate(WORDS):
        im = Image.new("RGB", (100, 32), "white")
        ImageDraw.Draw(im).text((4, 2), word, fill="black", font=font)
        im.save(root / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\t{word}\n")
    (root / "train.txt").write_text("".join(lines[:8]), encoding="utf-8")
    (root / "train2.txt").write_text("".join(lines[2:9]), encoding="utf-8")
    (root / "val.txt").write_text("".join(lines[8:]), encoding="utf-8")
    chars = sorted(set("".join(WORDS)))
    (root / "dict.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")
    (root / "base_dict.txt").write_text("".join(c + "\n" for c in chars[:-3]), encoding="utf-8")
    rng = np.random.default_rng(0)
    for name, ctc, nrtr in (("fit", len(chars) + 2, 0), ("base", len(chars) - 3 + 2, 0),
                            ("th", 526, 530), ("wrong", 7, 0)):
        state = {"backbone.conv1.conv.weight": rng.standard_normal((16, 3, 3, 3)).astype("float32"),
                 "head.ctc_head.fc.weight": rng.standard_normal((120, ctc)).astype("float32"),
                 "head.ctc_head.fc.bias": rng.standard_normal(ctc).astype("float32")}
        if nrtr:
            state["head.gtc_head.tgt_word_prj.weight"] = \
                rng.standard_normal((384, nrtr)).astype("float32")
        with open(root / f"{name}.pdparams", "wb") as fh:
            pickle.dump(state, fh, protocol=4)
    (root / "done").write_text("")


def cases(data: Path) -> Dict[str, List[str]]:
    """Case name -> `config build` arguments (without -o)."""
    d = str(data)
    common = ["--train-labels", f"{d}/train.txt", "--val-labels", f"{d}/val.txt",
              "--dict", f"{d}/dict.txt"]
    variants = {
        "plain": ["--device", "cpu", "--batch-size", "4"],
        "gpu-defaults": [],
        "knobs": ["--epochs", "3", "--lr", "0.0005", "--batch-size", "4",
                  "--max-text-length", "12", "--image-shape", "3,48,160", "--amp"],
        "amp-on-cpu": ["--device", "cpu", "--amp"],
        "set": ["--device", "cpu", "--batch-size", "2", "--set", "Global.print_batch_step=3",
                "--set", "Optimizer.weight_decay=0.0001", "--set", "Train.loader.num_workers=1",
                "--set", "Global.epoch_num=7"],
        "set-zero": ["--device", "cpu", "--batch-size", "2", "--set", "Global.epoch_num=0"],
        "ratio": ["--device", "cpu", "--batch-size", "4", "--train-labels", f"{d}/train2.txt",
                  "--ratio", "1,0.5", "--images-root", d, "--val-images-root", d],
        "no-check": ["--device", "cpu", "--no-check-data", "--batch-size", "2"],
        "pretrained": ["--device", "cpu", "--batch-size", "4", "--pretrained",
                       f"{d}/fit.pdparams"],
        "new-head": ["--device", "cpu", "--batch-size", "4", "--pretrained",
                     f"{d}/wrong.pdparams", "--allow-new-head"],
        "wrong-head": ["--device", "cpu", "--batch-size", "4", "--pretrained",
                       f"{d}/wrong.pdparams"],
        "grown": ["--device", "cpu", "--batch-size", "4", "--pretrained", f"{d}/base.pdparams",
                  "--base-dict", f"{d}/base_dict.txt"],
        "bad-set": ["--device", "cpu", "--set", "Global.nope"],
    }
    bases = list(PRESETS)
    if OFFICIAL.is_dir():
        bases += sorted(str(p) for p in OFFICIAL.glob("*.y*ml"))
    out: Dict[str, List[str]] = {}
    for base in bases:
        label = Path(base).stem if "/" in base else base
        for vname, vargs in variants.items():
            out[f"{label}--{vname}"] = ["--base", base] + common + vargs
    if OFFICIAL.is_dir():
        th = str(OFFICIAL / "th_PP-OCRv5_mobile_rec.yaml")
        for dname in ("ppocrv5_th_dict.txt", "ppocrv5_th_dict.stale-9b0493f.txt"):
            for weights in ("", f"{d}/th.pdparams"):
                args = ["--base", th, "--train-labels", f"{d}/train.txt", "--val-labels",
                        f"{d}/val.txt", "--dict", str(OFFICIAL / dname), "--device", "cpu",
                        "--batch-size", "4", "--image-shape", "3,48,160"]
                if weights:
                    args += ["--pretrained", weights]
                out[f"th-{Path(dname).stem}{'-weights' if weights else ''}"] = args
    return out


def record(src: Path, out: Path) -> None:
    make_data(WORK / "data")
    run = WORK / "run"
    if out.exists():
        sys.exit(f"{out} exists: choose a new folder")
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(src.resolve()), NO_COLOR="1", COLUMNS="200")
    all_cases = cases(WORK / "data")
    for i, (name, args) in enumerate(all_cases.items(), 1):
        case = run / name
        case.mkdir()
        argv = [sys.executable, "-m", "rectrain", "config", "build", *args,
                "-o", str(case / "config.yml"), "--json"]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=str(case))
        (case / "stdout.txt").write_text(proc.stdout, encoding="utf-8")
        (case / "stderr.txt").write_text(proc.stderr, encoding="utf-8")
        (case / "rc.txt").write_text(f"{proc.returncode}\n", encoding="utf-8")
        print(f"[{i}/{len(all_cases)}] {name}: exit {proc.returncode}", flush=True)
    shutil.move(str(run), str(out))


def _normalise(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name == "config.yml":  # line 1 holds the build time
        return b"\n".join(data.split(b"\n")[1:])
    if path.name == "stdout.txt":
        try:
            parsed = json.loads(data)
        except ValueError:
            return data
        return json.dumps(parsed, sort_keys=True).encode()
    return data


def compare(before: Path, after: Path) -> int:
    names_b = sorted(p.relative_to(before) for p in before.rglob("*") if p.is_file())
    names_a = sorted(p.relative_to(after) for p in after.rglob("*") if p.is_file())
    problems = [f"only before: {n}" for n in sorted(set(names_b) - set(names_a))]
    problems += [f"only after: {n}" for n in sorted(set(names_a) - set(names_b))]
    same = 0
    for name in sorted(set(names_a) & set(names_b)):
        if _normalise(before / name) == _normalise(after / name):
            same += 1
        else:
            problems.append(f"differs: {name}")
    cases_n = len({n.parts[0] for n in names_b})
    print(f"{cases_n} cases, {same} files identical (config.yml's timestamp line aside), "
          f"{len(problems)} problems")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--src", type=Path, required=True, help="the src/ folder to run")
    r.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.cmd == "record":
        record(args.src, args.out)
    else:
        sys.exit(compare(args.before, args.after))


if __name__ == "__main__":
    main()
