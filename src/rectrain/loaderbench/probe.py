"""The loader benchmark's engine side: run by path in a subprocess with the engine's root on
``sys.path`` (``rectrain.engine.launch.engine_env``), never imported by rectrain itself.

It builds the training data pipeline with the engine's own code (``tools.program.load_config``,
``ppocr.data.build_dataloader``: its dataset class, sampler, transforms and collation) and
measures two things:

* **profile**: one process, no workers: each sample's read, decode and every transform timed
  separately (the same steps, in the same order, as the dataset's ``__getitem__``), and the
  collation of each batch;
* **loader**: the engine's ``DataLoader`` with ``num_workers`` N (shared memory as configured)
  iterated for S seconds after its first batch: samples/s in total.

Prints one line ``RECTRAIN_BENCH_JSON {...}`` with the figures. Standard library, numpy, cv2 and
the engine only: this file must stay importable by any engine's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

MARKER = "RECTRAIN_BENCH_JSON "


def _engine_modules() -> Any:
    import paddle  # noqa: F401  (the engine's own import order)
    from ppocr.data import build_dataloader
    from ppocr.utils.logging import get_logger
    from tools.program import load_config, merge_config

    return build_dataloader, get_logger, load_config, merge_config


def _parse_overrides(items: List[str]) -> Dict[str, Any]:
    import yaml

    out: Dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


class _Timer:
    def __init__(self) -> None:
        self.total: Dict[str, float] = {}
        self.order: List[str] = []

    def add(self, name: str, seconds: float) -> None:
        if name not in self.total:
            self.total[name] = 0.0
            self.order.append(name)
        self.total[name] += seconds


def _run_ops(data: Any, ops: List[Any], timer: _Timer) -> Any:
    for op in ops:
        name = type(op).__name__
        if name == "DecodeImage":
            name = "decode"
        t0 = time.perf_counter()
        data = op(data)
        timer.add(name, time.perf_counter() - t0)
        if data is None:
            return None
    return data


def _profile_item(dataset: Any, item: Any, timer: _Timer) -> Any:
    """One sample as the dataset's ``__getitem__`` makes it, each step timed (None: the
    engine would have rejected it and drawn another)."""
    multiscale = isinstance(item, (list, tuple))
    if multiscale:
        width, height, idx = item[0], item[1], item[2]
        wh_ratio = item[3] if len(item) > 3 else None
        if getattr(dataset, "ds_width", False) and wh_ratio is not None:
            width = height * (1 if int(round(wh_ratio)) == 0 else int(round(wh_ratio)))
            file_idx = dataset.wh_ratio_sort[idx]
        else:
            file_idx = dataset.data_idx_order_list[idx]
    else:
        file_idx = dataset.data_idx_order_list[item]
    line = dataset.data_lines[file_idx].decode("utf-8").strip("\n").split(dataset.delimiter)
    file_name = dataset._try_parse_filename_list(line[0])
    path = os.path.join(dataset.data_dir, file_name)
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        raw = fh.read()
    timer.add("read", time.perf_counter() - t0)
    data = {"img_path": path, "label": line[1], "image": raw}
    t0 = time.perf_counter()
    data["ext_data"] = dataset.get_ext_data()
    ext = time.perf_counter() - t0
    if data["ext_data"]:
        timer.add("ext_data (read+decode of RecConAug partners)", ext)
    data["filename"] = path
    if not multiscale:
        data = _run_ops(data, dataset.ops, timer)
    else:
        data = _run_ops(data, dataset.ops[:-1], timer)
        if data is not None:
            t0 = time.perf_counter()
            data = dataset.resize_norm_img(data, width, height)
            timer.add("MultiScaleResize", time.perf_counter() - t0)
            data = _run_ops(data, dataset.ops[-1:], timer)
    return data


def _collate(loader: Any) -> Any:
    fn = getattr(loader, "collate_fn", None)
    if fn is not None:
        return fn
    from paddle.io.dataloader.collate import default_collate_fn

    return default_collate_fn


def profile(dataset: Any, batch_sampler: Any, collate: Any, seconds: float,
            min_samples: int) -> Dict[str, Any]:
    timer = _Timer()
    samples = rejected = 0
    started = time.perf_counter()
    done = False
    while not done:
        for batch in batch_sampler:
            outs = []
            for item in batch:
                out = _profile_item(dataset, item, timer)
                if out is None:
                    rejected += 1
                    continue
                outs.append(out)
                samples += 1
            if outs:
                items = [tuple(o) if isinstance(o, list) else o for o in outs]
                t0 = time.perf_counter()
                collate(items)
                timer.add("collate", time.perf_counter() - t0)
            if time.perf_counter() - started >= seconds and samples >= min_samples:
                done = True
                break
        if samples == 0:
            break
    total = sum(timer.total.values())
    stages = [{"stage": name, "ms_per_sample": round(1000 * timer.total[name] / max(samples, 1), 4),
               "share": round(timer.total[name] / total, 4) if total else 0.0}
              for name in timer.order]
    return {"samples": samples, "rejected": rejected, "seconds": round(total, 4),
            "samples_per_s": round(samples / total, 2) if total else 0.0, "stages": stages}


def measure_loader(loader: Any, seconds: float, min_batches: int) -> Dict[str, Any]:
    """Samples/s through the loader over whole epochs, each epoch's start-up included (the
    engine's loader starts its workers again every epoch, and they prefetch while it does);
    ``startup_s`` is the mean wait for an epoch's first batch."""
    samples = batches = epochs = 0
    startup = 0.0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or batches < min_batches:
        epochs += 1
        t_epoch = time.perf_counter()
        got = 0
        for batch in loader:
            if got == 0:
                startup += time.perf_counter() - t_epoch
            got += 1
            samples += int(batch[0].shape[0])
            batches += 1
        if got == 0:
            raise SystemExit("the training loader yielded no batch: no samples?")
    elapsed = time.perf_counter() - started
    return {"samples": samples, "batches": batches, "epochs": epochs, "seconds": round(elapsed, 4),
            "startup_s": round(startup / epochs, 4),
            "samples_per_s": round(samples / elapsed, 2) if elapsed else 0.0}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--profile-seconds", type=float, default=None)
    ap.add_argument("--mode", default="Train")
    ap.add_argument("--no-loader", action="store_true", help="profile only")
    ap.add_argument("-o", dest="overrides", nargs="*", default=[])
    args = ap.parse_args(argv)

    build_dataloader, get_logger, load_config, merge_config = _engine_modules()
    import paddle

    config = load_config(args.config)
    overrides = _parse_overrides(args.overrides)
    overrides[f"{args.mode}.loader.num_workers"] = args.workers
    config = merge_config(config, overrides)
    config["Global"]["distributed"] = False
    logger = get_logger()
    seed = config["Global"].get("seed", 1024)
    place = paddle.CPUPlace()
    # the profile: the engine's own loader object, used for its dataset, sampler and collation
    loader = build_dataloader(config, args.mode, place, logger, seed)
    dataset = loader.dataset
    batch_size = int(config[args.mode]["loader"]["batch_size_per_card"])
    result: Dict[str, Any] = {
        "dataset": type(dataset).__name__, "samples_in_dataset": len(dataset),
        "batch_size": batch_size, "workers": args.workers,
        "use_shared_memory": bool(config[args.mode]["loader"].get("use_shared_memory", True)),
    }
    prof_s = args.profile_seconds if args.profile_seconds is not None else max(1.0, args.seconds / 2)
    result["profile"] = profile(dataset, loader.batch_sampler, _collate(loader), prof_s,
                                min_samples=batch_size)
    if not args.no_loader:
        result["loader"] = measure_loader(loader, args.seconds, min_batches=2)
    sys.stdout.flush()
    print(MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
