"""The key check for growing a head, on a real model trained here on the CPU (extend_run.py):

- before any fine-tuning, the exported grown model reads the old characters exactly as the
  original: the same texts, the old classes' scores equal up to the softmax normaliser (1e-5);
- after a short mixed fine-tune (new-character words + old words through ratio_list), it reads
  words with the new characters while its accuracy on the old held-out words stays within a
  few points.
"""

from __future__ import annotations

import pytest

from .extend_run import experiment


@pytest.mark.slow
def test_grown_head_keeps_old_predictions_and_learns_new_characters(tmp_path) -> None:
    pytest.importorskip("fontpkg_sarabun")
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")
    r = experiment(tmp_path)
    assert r["base_old_acc"] >= 0.8, r  # the base model reads; otherwise nothing is tested
    # before fine-tuning: the grown model is the old model
    assert r["argmax_equal"] and r["old_logit_max_diff"] < 1e-5, r
    assert r["ext_old_acc"] == r["base_old_acc"], r
    assert r["ext_new_acc"] == 0.0, r  # it cannot read what it never learnt
    # after a short mixed fine-tune: new characters learnt, old words kept
    assert r["ft_new_acc"] >= 0.6, r
    assert r["ft_old_acc"] >= r["base_old_acc"] - 0.1, r
