"""MetricDefinitions regexes against REAL engine log lines (PaddleOCR 2.10 tools/train.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sm_helpers import ENGINE_LOG, SHARED_CONFIGS, make_tiny_dataset

from rectrain.errors import ConfigError
from rectrain.sagemaker.metric_definitions import (
    BUILTIN_METRICS,
    MAX_METRICS,
    MAX_REGEX_CHARS,
    metric_definitions,
    parse_metrics,
)

TRAINING_FIXTURE = Path(__file__).resolve().parents[1] / "training" / "fixtures" / "engine-2.10-cpu-train.log"


def _collect(lines):
    train, evals, best = [], [], []
    for line in lines:
        found = parse_metrics(line)
        if "train:loss" in found:
            train.append(found)
        if "eval:acc" in found:
            evals.append(found)
        if "eval:best_acc" in found:
            best.append(found)
        # no line is both a training and an evaluation line
        assert not ({k for k in found if k.startswith("train:")} and
                    {k for k in found if k.startswith("eval:")}), line
    return train, evals, best


def test_multihead_thai_log_fixture():
    """Captured from the official th_PP-OCRv5_mobile_rec config (MultiHead CTC+NRTR) on CPU."""
    lines = ENGINE_LOG.read_text(encoding="utf-8").splitlines()
    train, evals, best = _collect(lines)
    assert len(train) == 4 and len(evals) == 2 and len(best) == 3
    first = train[0]
    assert first["train:loss"] == pytest.approx(244.894821)  # not CTCLoss (237.97) or NRTRLoss
    assert first["train:ctc_loss"] == pytest.approx(237.969055)
    assert first["train:nrtr_loss"] == pytest.approx(6.92576)
    assert first["train:lr"] == pytest.approx(0.0005)
    assert first["train:acc"] == 0.0
    assert first["train:norm_edit_dis"] == pytest.approx(0.015976)
    assert first["train:samples_per_sec"] == pytest.approx(1.90235)
    assert first["train:epoch"] == 1 and first["train:global_step"] == 1
    assert [t["train:global_step"] for t in train] == [1, 2, 3, 4]
    # exponent form: norm_edit_dis: 2.4999937499048386e-06
    assert evals[0]["eval:norm_edit_dis"] == pytest.approx(2.4999937499048386e-06)
    assert evals[0]["eval:acc"] == 0.0 and evals[0]["eval:fps"] == pytest.approx(11.811671840117489)
    # the config dump lines (e.g. "lr :", "name : Cosine") match nothing
    dumped = [line for line in lines if "global_step" not in line and "metric," not in line]
    assert all(parse_metrics(line) == {} for line in dumped)


def test_gpu_memory_suffix():
    """On a CUDA build the engine appends the memory figures (tools/program.py:
    f", max_mem_reserved: {..} MB," + f" max_mem_allocated: {..} MB")."""
    line = ("[2026/11/25 20:00:00] ppocr INFO: epoch: [3/50], global_step: 300, lr: 0.000480, acc: 0.512000, "
            "norm_edit_dis: 0.801234, CTCLoss: 3.1, NRTRLoss: 0.9, loss: 4.012345, "
            "avg_reader_cost: 0.00100 s, "
            "avg_batch_cost: 0.25000 s, avg_samples: 128.0, ips: 512.00000 samples/s, eta: 1:02:03"
            ", max_mem_reserved: 10240 MB, max_mem_allocated: 9000 MB")
    found = parse_metrics(line)
    assert found["train:gpu_mem_reserved_mb"] == 10240 and found["train:gpu_mem_allocated_mb"] == 9000
    assert found["train:samples_per_sec"] == 512 and found["train:loss"] == pytest.approx(4.012345)
    assert found["train:epoch"] == 3 and found["train:global_step"] == 300
    cpu = parse_metrics(ENGINE_LOG.read_text(encoding="utf-8").splitlines()[0])
    assert "train:gpu_mem_reserved_mb" not in cpu


@pytest.mark.skipif(not TRAINING_FIXTURE.is_file(), reason="the training engineer's log fixture is absent")
def test_ctc_log_fixture_of_the_training_stage():
    lines = TRAINING_FIXTURE.read_text(encoding="utf-8").splitlines()
    expected = sum(1 for line in lines if "global_step:" in line)
    train, evals, _ = _collect(lines)
    assert len(train) == expected > 0
    assert all("train:ctc_loss" not in t for t in train)  # single-head CTC: only "loss"
    assert len(evals) == sum(1 for line in lines if "cur metric," in line)


def test_limits_and_extra_metrics():
    assert len(BUILTIN_METRICS) <= MAX_METRICS
    assert all(len(d["Regex"]) <= MAX_REGEX_CHARS for d in BUILTIN_METRICS)
    assert all(re.compile(d["Regex"]).groups >= 1 for d in BUILTIN_METRICS)
    defs = metric_definitions([{"Name": "train:SARLoss", "Regex": r"SARLoss: ([0-9.]+)"}])
    assert defs[-1]["Name"] == "train:SARLoss"
    with pytest.raises(ConfigError, match="already defined"):
        metric_definitions([{"Name": "train:loss", "Regex": "x: ([0-9]+)"}])
    with pytest.raises(ConfigError, match="no capture group"):
        metric_definitions([{"Name": "x", "Regex": "x: [0-9]+"}])
    with pytest.raises(ConfigError, match="500"):
        metric_definitions([{"Name": "x", "Regex": "(" + "a" * 600 + ")"}])
    with pytest.raises(ConfigError, match="at most 40"):
        metric_definitions([{"Name": f"m{i}", "Regex": f"m{i}: ([0-9]+)"} for i in range(40)])


@pytest.mark.slow
def test_regexes_on_a_fresh_engine_run(tmp_path):
    """Run the real engine (official Thai config, tiny images, 4 steps, CPU) and read its log."""
    base = SHARED_CONFIGS / "th_PP-OCRv5_mobile_rec.yaml"
    if not base.is_file():
        pytest.skip(f"official configs not found at {SHARED_CONFIGS}")
    from rectrain.engine import find_engine

    engine = find_engine()
    data = make_tiny_dataset(tmp_path / "data")
    cfg = yaml.safe_load(base.read_text(encoding="utf-8"))
    g = cfg["Global"]
    g.update(use_gpu=False, epoch_num=2, print_batch_step=1, eval_batch_step=[0, 2],
             save_model_dir=str(tmp_path / "out"), character_dict_path=str(data["dict"]),
             distributed=False, d2s_train_image_shape=[3, 32, 100], save_epoch_step=100)
    cfg["Optimizer"]["lr"]["warmup_epoch"] = 0
    train = cfg["Train"]
    train["dataset"].update(data_dir=str(data["root"]), label_file_list=[str(data["train"])])
    train["dataset"]["transforms"][1]["RecConAug"]["image_shape"] = [32, 100, 3]
    train["sampler"].update(first_bs=4, scales=[[100, 32]])
    train["loader"].update(num_workers=0, batch_size_per_card=4)
    ev = cfg["Eval"]
    ev["dataset"].update(data_dir=str(data["root"]), label_file_list=[str(data["val"])])
    ev["dataset"]["transforms"][2]["RecResizeImg"]["image_shape"] = [3, 32, 100]
    ev["loader"].update(num_workers=0, batch_size_per_card=4)
    config = tmp_path / "th.yml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-u", str(engine.script("train")), "-c", str(config)],
                          cwd=str(engine.root), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).replace("\r", "\n").splitlines()
    train_m, evals, best = _collect(lines)
    assert len(train_m) == 4, "\n".join(lines[-40:])
    assert len(evals) == 2 and best
    for found in train_m:
        assert found["train:loss"] > 0
        # "loss" is the total, not a head's loss (each a smoothed median, so not additive)
        assert found["train:ctc_loss"] > 0 and found["train:nrtr_loss"] > 0
        assert found["train:loss"] not in (found["train:ctc_loss"], found["train:nrtr_loss"])
        assert 0 <= found["train:norm_edit_dis"] <= 1 and found["train:samples_per_sec"] > 0
    assert all(0 <= e["eval:acc"] <= 1 for e in evals)
