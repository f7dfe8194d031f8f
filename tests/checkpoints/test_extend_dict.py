"""Growing a head for new characters, on .pdparams files with the engine's tensor names and
layouts (CTC, MultiHead CTC + NRTR, SAR), numpy only. The real-model check (export, logits,
fine-tune) is test_extend_dict_real.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from rectrain.checkpoints.extend_dict import extend_dictionary
from rectrain.checkpoints.pdparams import NAME_MAP_KEY, load_state
from rectrain.cli.main import main
from rectrain.errors import EXIT_USER_ERROR, UserError

OLD = ["a", "b", "", "c", "b", "ωก"]  # an empty line, a repeat and a two-code-point line: kept
NEW = OLD + ["ฃ", "๏"]


def _dict(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _save(path: Path, tensors: dict) -> Path:
    state = dict(tensors)
    state[NAME_MAP_KEY] = {k: f"p_{i}" for i, k in enumerate(tensors)}
    with open(path, "wb") as fh:
        pickle.dump(state, fh, protocol=4)
    return path


@pytest.fixture
def dicts(tmp_path):
    return _dict(tmp_path / "old.txt", OLD), _dict(tmp_path / "new.txt", NEW)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype("float32")


@pytest.mark.parametrize("space", [False, True])
def test_ctc_head_rows_move_to_their_new_indices(tmp_path, dicts, space):
    old, new = dicts
    c = 1 + len(OLD) + int(space)  # blank + lines + space
    tensors = {"backbone.conv.weight": _rand(8, 3, 3, 3), "head.fc.weight": _rand(16, c),
               "head.fc.bias": _rand(c)}
    src = _save(tmp_path / "w.pdparams", tensors)
    report = extend_dictionary(src, old, new, tmp_path / "grown.pdparams", use_space_char=space)
    out = load_state(report.out)
    w, b = out["head.fc.weight"], out["head.fc.bias"]
    k = 2
    assert w.shape == (16, c + k) and b.shape == (c + k,)
    n = len(OLD)
    # blank and the old lines keep their index; the space moves behind the new characters
    np.testing.assert_array_equal(w[:, : 1 + n], tensors["head.fc.weight"][:, : 1 + n])
    if space:
        np.testing.assert_array_equal(w[:, -1], tensors["head.fc.weight"][:, -1])
    # new columns: the mean of the single-code-point lines' columns (a, b, c, b; not blank,
    # the empty line, 'ωก' or the space)
    rows = [1 + i for i, ch in enumerate(OLD) if len(ch) == 1]
    for j in range(k):
        np.testing.assert_allclose(w[:, 1 + n + j], tensors["head.fc.weight"][:, rows].mean(1),
                                   rtol=1e-6)
        assert b[1 + n + j] == pytest.approx(tensors["head.fc.bias"][rows].mean(), rel=1e-6)
    np.testing.assert_array_equal(out["backbone.conv.weight"], tensors["backbone.conv.weight"])
    assert out[NAME_MAP_KEY] == load_state(src)[NAME_MAP_KEY]
    # for any input, the old classes' logits are exactly the old ones and no new class wins
    x = _rand(50, 16, seed=3)
    before = x @ tensors["head.fc.weight"] + tensors["head.fc.bias"]
    after = x @ w + b
    keep = list(range(1 + n)) + ([c + k - 1] if space else [])
    np.testing.assert_array_equal(after[:, keep], before)
    assert (after.argmax(1) < 1 + n).sum() + (after.argmax(1) == c + k - 1).sum() == 50


def test_multihead_ctc_and_nrtr_keep_special_tokens(tmp_path, dicts):
    old, new = dicts
    n, c = len(OLD), 1 + len(OLD) + 1  # use_space_char on, as the official PP-OCRv5 configs
    tensors = {"head.ctc_head.fc.weight": _rand(120, c), "head.ctc_head.fc.bias": _rand(c),
               "head.gtc_head.tgt_word_prj.weight": _rand(32, c + 4),
               "head.gtc_head.embedding.embedding.weight": _rand(c + 4, 32),
               "head.gtc_head.decoder.0.cross_attn.kv.weight": _rand(32, 64)}
    src = _save(tmp_path / "mh.pdparams", tensors)
    report = extend_dictionary(src, old, new, tmp_path / "mh2.pdparams", use_space_char=True)
    out = load_state(report.out)
    prj, emb = out["head.gtc_head.tgt_word_prj.weight"], out["head.gtc_head.embedding.embedding.weight"]
    assert prj.shape == (32, c + 6) and emb.shape == (c + 6, 32)
    # [blank, <unk>, <s>, </s>, lines..., new..., space, unused]
    np.testing.assert_array_equal(emb[: 4 + n], tensors["head.gtc_head.embedding.embedding.weight"][: 4 + n])
    np.testing.assert_array_equal(emb[-2:], tensors["head.gtc_head.embedding.embedding.weight"][-2:])
    np.testing.assert_array_equal(prj[:, -2:], tensors["head.gtc_head.tgt_word_prj.weight"][:, -2:])
    np.testing.assert_array_equal(out["head.gtc_head.decoder.0.cross_attn.kv.weight"],
                                  tensors["head.gtc_head.decoder.0.cross_attn.kv.weight"])
    assert set(report.tensors) == {k for k in tensors if "kv" not in k}


def test_sar_layout(tmp_path, dicts):
    old, new = dicts
    n, c = len(OLD), 1 + len(OLD) + 1
    emb, pred = _rand(c + 2, 8), _rand(24, c + 1)
    src = _save(tmp_path / "sar.pdparams", {
        "head.ctc_head.fc.weight": _rand(24, c), "head.sar_head.decoder.embedding.weight": emb,
        "head.sar_head.decoder.prediction.weight": pred,
        "head.sar_head.decoder.prediction.bias": _rand(c + 1)})
    out = load_state(extend_dictionary(src, old, new, tmp_path / "o.pdparams",
                                       use_space_char=True).out)
    e = out["head.sar_head.decoder.embedding.weight"]
    # [lines..., new..., space, <UKN>, <BOS/EOS>, <PAD>]: the tail moves, the lines stay
    np.testing.assert_array_equal(e[:n], emb[:n])
    np.testing.assert_array_equal(e[-4:], emb[-4:])
    assert out["head.sar_head.decoder.prediction.weight"].shape == (24, c + 3)


def test_refusals(tmp_path, dicts):
    old, new = dicts
    c = 1 + len(OLD)
    src = _save(tmp_path / "w.pdparams", {"head.fc.weight": _rand(4, c), "head.fc.bias": _rand(c)})
    with pytest.raises(UserError, match="same file as the pretrained weights"):
        extend_dictionary(src, old, new, src)
    reordered = _dict(tmp_path / "re.txt", ["b", "a"] + OLD[2:] + ["ฃ"])
    with pytest.raises(UserError, match="line 1 is 'b'") as err:
        extend_dictionary(src, old, reordered, tmp_path / "o.pdparams")
    assert "rectrain data dict LABELS --base" in str(err.value)
    with pytest.raises(UserError, match="fits that dictionary with use_space_char off"):
        extend_dictionary(src, old, new, tmp_path / "o.pdparams", use_space_char=True)
    with pytest.raises(UserError, match="adds nothing"):
        extend_dictionary(src, old, old, tmp_path / "o.pdparams")
    assert not (tmp_path / "o.pdparams").exists()
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"x": Path("/")}, protocol=4))
    with pytest.raises(UserError, match="refusing to load"):
        extend_dictionary(evil, old, new, tmp_path / "o.pdparams")


def test_cli_extend_dict(tmp_path, dicts, capsys):
    old, new = dicts
    c = 1 + len(OLD)
    src = _save(tmp_path / "w.pdparams", {"head.fc.weight": _rand(4, c), "head.fc.bias": _rand(c)})
    out = tmp_path / "g.pdparams"
    assert main(["ckpt", "extend-dict", "--pretrained", str(src), "--base-dict", str(old),
                 "--dict", str(new), "-o", str(out)]) == 0
    assert "2 new class(es)" in capsys.readouterr().out
    assert main(["ckpt", "extend-dict", "--pretrained", str(src), "--base-dict", str(old),
                 "--dict", str(new), "-o", str(src)]) == EXIT_USER_ERROR
    assert "same file as the pretrained weights" in capsys.readouterr().err
