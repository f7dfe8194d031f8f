"""`config build` for fine-tuning: the stale Thai dictionary refused with weights, a grown
dictionary grows the head (--base-dict, or an official dictionary recognised in NEW's first
lines), a mismatch stops with both sizes, and several train label files with --ratio.

The official th_PP-OCRv5_mobile_rec weights are not available offline: .pdparams files with its
head's tensor names and shapes stand in (CTC 526 = blank + 524 lines + space; the NRTR
projection 530 = CTC + 3 special tokens + the Transformer's extra row)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from rectrain.checkpoints.pdparams import load_state
from rectrain.cli.main import main
from rectrain.config.build import create_recognition_training_config as build
from rectrain.errors import EXIT_USER_ERROR, ConfigError

from .conftest import make_data


def _weights(path: Path, ctc: int, nrtr: int = 0) -> Path:
    rng = np.random.default_rng(0)
    state = {"backbone.conv1.conv.weight": rng.standard_normal((16, 3, 3, 3)).astype("float32"),
             "head.ctc_head.fc.weight": rng.standard_normal((120, ctc)).astype("float32"),
             "head.ctc_head.fc.bias": rng.standard_normal(ctc).astype("float32")}
    if nrtr:
        state["head.gtc_head.tgt_word_prj.weight"] = rng.standard_normal((384, nrtr)).astype("float32")
        state["head.gtc_head.embedding.embedding.weight"] = \
            rng.standard_normal((nrtr, 384)).astype("float32")
    with open(path, "wb") as fh:
        pickle.dump(state, fh, protocol=4)
    return path


def _th(official: Path, tmp_path: Path, dict_path: Path, **kw):
    data = make_data(tmp_path / "d")
    return build(str(official / "th_PP-OCRv5_mobile_rec.yaml"), data.train, data.val, dict_path,
                 tmp_path / "th.yml", batch_size=4, image_shape="3,48,160", device="cpu", **kw)


def test_stale_thai_dictionary_is_refused_with_weights(official, tmp_path, capsys):
    stale = official / "ppocrv5_th_dict.stale-9b0493f.txt"
    w = _weights(tmp_path / "th.pdparams", 526, 530)
    with pytest.raises(ConfigError) as err:
        _th(official, tmp_path, stale, pretrained=w)
    assert "stale" in str(err.value) and "raw.githubusercontent.com" in str(err.value)
    # without weights: a warning, and the build says which dictionary it is
    res = _th(official, tmp_path, stale)
    assert any("stale revision" in w for w in res.warnings)
    assert "523 lines, stale" in res.stats["official_dictionary"]
    data = make_data(tmp_path / "d2")
    capsys.readouterr()  # earlier log lines (a handler of an earlier CLI test may be closed)
    rc = main(["config", "build", "--base", str(official / "th_PP-OCRv5_mobile_rec.yaml"),
               "--train-labels", str(data.train), "--val-labels", str(data.val), "--dict",
               str(stale), "-o", str(tmp_path / "c.yml"), "--batch-size", "4", "--image-shape",
               "3,48,160", "--device", "cpu", "--pretrained", str(w)])
    assert rc == EXIT_USER_ERROR
    err_text = capsys.readouterr().err
    assert "ppocrv5_th_dict.txt" in err_text and "Traceback" not in err_text
    rc = main(["config", "build", "--base", str(official / "th_PP-OCRv5_mobile_rec.yaml"),
               "--train-labels", str(data.train), "--val-labels", str(data.val), "--dict",
               str(official / "ppocrv5_th_dict.txt"), "-o", str(tmp_path / "c.yml"),
               "--batch-size", "4", "--image-shape", "3,48,160", "--device", "cpu",
               "--pretrained", str(w)])
    assert rc == 0 and "dictionary: the official" in capsys.readouterr().out


def test_official_weights_fit_the_current_dictionary(official, tmp_path):
    w = _weights(tmp_path / "th.pdparams", 526, 530)
    res = _th(official, tmp_path, official / "ppocrv5_th_dict.txt", pretrained=w)
    assert res.config["Global"]["pretrained_model"] == str(w.resolve())
    assert "524 lines, current" in res.stats["official_dictionary"]


def test_grown_official_dictionary_grows_the_head(official, tmp_path):
    new = tmp_path / "th_plus.txt"
    new.write_bytes((official / "ppocrv5_th_dict.txt").read_bytes() + "ฃ\n๛\n".encode())
    w = _weights(tmp_path / "th.pdparams", 526, 530)
    res = _th(official, tmp_path, new, pretrained=w)
    grown = Path(res.config["Global"]["pretrained_model"])
    assert grown == tmp_path / "th.grown.pdparams"
    state = load_state(grown)
    assert state["head.ctc_head.fc.weight"].shape == (120, 528)
    assert state["head.gtc_head.tgt_word_prj.weight"].shape == (384, 532)
    old = load_state(w)
    np.testing.assert_array_equal(state["head.ctc_head.fc.weight"][:, :525],
                                  old["head.ctc_head.fc.weight"][:, :525])  # blank + 524 lines
    np.testing.assert_array_equal(state["head.ctc_head.fc.weight"][:, -1],
                                  old["head.ctc_head.fc.weight"][:, -1])  # the space, moved
    assert any("the head was grown" in x for x in res.warnings)
    assert w.read_bytes() == (tmp_path / "th.pdparams").read_bytes()


def test_grown_own_dictionary_needs_base_dict(tmp_path):
    data = make_data(tmp_path / "d")
    chars = [c for c in data.dict_path.read_text(encoding="utf-8").split("\n") if c]
    old = tmp_path / "old.txt"
    old.write_text("".join(c + "\n" for c in chars[:-2]), encoding="utf-8")
    w = _weights(tmp_path / "w.pdparams", len(chars) - 2 + 1)  # crnn-mv3: no space
    kw = dict(batch_size=4, device="cpu", pretrained=w,
              overrides=["Global.use_space_char=False"])
    with pytest.raises(ConfigError, match="--base-dict") as err:
        build("crnn-mv3", data.train, data.val, data.dict_path, tmp_path / "o.yml", **kw)
    assert f"has {len(chars) - 1} outputs" in str(err.value)
    assert f"i.e. {len(chars) + 1} outputs" in str(err.value)
    # --allow-new-head: the user's choice, a warning and the weights as they are
    res = build("crnn-mv3", data.train, data.val, data.dict_path, tmp_path / "o.yml",
                allow_new_head=True, **kw)
    assert res.config["Global"]["pretrained_model"] == str(w.resolve())
    assert any("allowed by --allow-new-head" in x for x in res.warnings)
    res = build("crnn-mv3", data.train, data.val, data.dict_path, tmp_path / "o.yml",
                base_dict=old, **kw)
    assert load_state(res.config["Global"]["pretrained_model"])["head.ctc_head.fc.weight"].shape \
        == (120, len(chars) + 1)


def test_several_train_files_with_ratios(tmp_path, capsys):
    data = make_data(tmp_path / "d")
    extra = tmp_path / "d" / "extra.txt"
    extra.write_text(data.train.read_text(encoding="utf-8"), encoding="utf-8")
    res = build("crnn-mv3", [data.train, extra], data.val, data.dict_path, tmp_path / "o.yml",
                batch_size=4, device="cpu", ratio=[1.0, 0.5])
    assert res.config["Train"]["dataset"]["ratio_list"] == [1.0, 0.5]
    assert res.stats["train_samples_per_epoch"] == 12 and res.stats["steps_per_epoch_1card"] == 3
    with pytest.raises(ConfigError, match="2 --train-labels"):
        build("crnn-mv3", [data.train, extra], data.val, data.dict_path, tmp_path / "o.yml",
              batch_size=4, ratio=[1.0])
    with pytest.raises(ConfigError, match=r"must be in \(0, 1\]"):
        build("crnn-mv3", [data.train, extra], data.val, data.dict_path, tmp_path / "o.yml",
              batch_size=4, ratio=[1.0, 1.5])
    rc = main(["config", "build", "--base", "crnn-mv3", "--train-labels", str(data.train),
               "--train-labels", str(extra), "--ratio", "1,0.25", "--val-labels", str(data.val),
               "--dict", str(data.dict_path), "-o", str(tmp_path / "c.yml"), "--batch-size", "4",
               "--device", "cpu", "--json"])
    assert rc == 0 and '"train_samples_per_epoch": 10' in capsys.readouterr().out
