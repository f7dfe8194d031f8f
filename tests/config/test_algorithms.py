"""Derived fields of other algorithms' configs (NRTR, ABINet, SAR, distillation), written here
from the facts of the official configs on top of our crnn-mv3 preset."""

from __future__ import annotations

import copy

import yaml

from rectrain.config.build import create_recognition_training_config as build
from rectrain.config.presets import PRESETS


def _base(tmp_path, name, arch, loss, post, train_ops, eval_ops=None):
    cfg = copy.deepcopy(PRESETS["crnn-mv3"].load())
    cfg["Architecture"] = arch
    cfg["Loss"] = loss
    cfg["PostProcess"] = post
    cfg["Train"]["dataset"]["transforms"] = train_ops
    cfg["Eval"]["dataset"]["transforms"] = copy.deepcopy(eval_ops or train_ops)
    for mode in ("Train", "Eval"):
        cfg[mode]["dataset"] = {"name": "LMDBDataSet", "data_dir": "./train_data/lmdb",
                                "transforms": cfg[mode]["dataset"]["transforms"]}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _ops(cfg, mode="Train"):
    return {k: v for op in cfg[mode]["dataset"]["transforms"] for k, v in op.items()}


def test_nrtr_gray_resize_is_w_h_and_head_max_len_follows(tiny, tmp_path):
    base = _base(tmp_path, "nrtr",
                 {"model_type": "rec", "algorithm": "NRTR", "in_channels": 1, "Transform": None,
                  "Backbone": {"name": "MTB", "cnn_num": 2},
                  "Head": {"name": "Transformer", "d_model": 512, "num_encoder_layers": 6,
                           "beam_size": -1}},
                 {"name": "CELoss", "smoothing": True}, {"name": "NRTRLabelDecode"},
                 [{"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
                  {"NRTRLabelEncode": None},
                  {"GrayRecResizeImg": {"image_shape": [100, 32], "resize_type": "PIL"}},
                  {"KeepKeys": {"keep_keys": ["image", "label", "length"]}}])
    res = build(str(base), tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
                batch_size=4, image_shape="1,32,128", max_text_length=30, device="cpu")
    cfg = res.config
    assert _ops(cfg)["GrayRecResizeImg"]["image_shape"] == [128, 32]  # W, H
    assert _ops(cfg, "Eval")["GrayRecResizeImg"]["image_shape"] == [128, 32]
    assert cfg["Architecture"]["Head"]["max_len"] == 30  # Transformer's default is 25
    assert cfg["Train"]["dataset"]["name"] == "SimpleDataSet"


def test_abinet_ignore_index_moves_above_a_large_dictionary(tmp_path, official):
    from .conftest import make_data

    data = make_data(tmp_path / "d")
    thai = official / "ppocrv5_th_dict.txt"
    ops = [{"DecodeImage": {"img_mode": "RGB", "channel_first": False}},
           {"ABINetLabelEncode": {"ignore_index": 100}},
           {"ABINetRecResizeImg": {"image_shape": [3, 32, 128]}},
           {"KeepKeys": {"keep_keys": ["image", "label", "length"]}}]
    base = _base(tmp_path, "abinet",
                 {"model_type": "rec", "algorithm": "ABINet", "in_channels": 3,
                  "Transform": None, "Backbone": {"name": "ResNet45"},
                  "Head": {"name": "ABINetHead", "use_lang": True, "iter_size": 3}},
                 {"name": "CELoss", "ignore_index": 100}, {"name": "ABINetLabelDecode"}, ops)
    res = build(str(base), data.train, data.val, thai, tmp_path / "o.yml", batch_size=4,
                device="cpu")
    cfg = res.config
    assert cfg["Loss"]["ignore_index"] == 600  # 523 lines + space: 100 would be a real class
    assert _ops(cfg)["ABINetLabelEncode"]["ignore_index"] == 600
    assert _ops(cfg, "Eval")["ABINetLabelEncode"]["ignore_index"] == 600
    # a small dictionary keeps the official value
    res = build(str(base), data.train, data.val, data.dict_path, tmp_path / "o2.yml",
                batch_size=4, device="cpu")
    assert res.config["Loss"]["ignore_index"] == 100


def test_sar_four_value_shape(tiny, tmp_path):
    ops = [{"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
           {"SARLabelEncode": None},
           {"SARRecResizeImg": {"image_shape": [3, 48, 48, 160], "width_downsample_ratio": 0.25}},
           {"KeepKeys": {"keep_keys": ["image", "label", "valid_ratio"]}}]
    base = _base(tmp_path, "sar",
                 {"model_type": "rec", "algorithm": "SAR", "Transform": None,
                  "Backbone": {"name": "ResNet31"}, "Head": {"name": "SARHead"}},
                 {"name": "SARLoss"}, {"name": "SARLabelDecode"}, ops)
    res = build(str(base), tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
                batch_size=4, image_shape="3,48,128", device="cpu")
    assert _ops(res.config)["SARRecResizeImg"]["image_shape"] == [3, 48, 48, 128]


def test_distillation_models_are_checked_and_follow(tiny, tmp_path):
    student = {"pretrained": "./pretrain_models/student", "freeze_params": False,
               "return_all_feats": True, "model_type": "rec", "algorithm": "SVTR",
               "Transform": None,
               "Backbone": {"name": "MobileNetV1Enhance", "scale": 0.5,
                            "last_conv_stride": [1, 2], "last_pool_type": "avg"},
               "Head": {"name": "MultiHead", "head_list": [
                   {"CTCHead": {"Neck": {"name": "svtr", "dims": 64, "depth": 2,
                                         "hidden_dims": 120, "use_guide": True},
                                "Head": {"fc_decay": 0.00001}}},
                   {"SARHead": {"enc_dim": 512, "max_text_length": 25}}]}}
    arch = {"model_type": "rec", "name": "DistillationModel", "algorithm": "Distillation",
            "Models": {"Teacher": copy.deepcopy(student), "Student": student}}
    loss = {"name": "CombinedLoss", "loss_config_list": [
        {"DistillationCTCLoss": {"weight": 1.0, "model_name_list": ["Student", "Teacher"],
                                 "key": "head_out", "multi_head": True}},
        {"DistillationSARLoss": {"weight": 1.0, "model_name_list": ["Student", "Teacher"],
                                 "key": "head_out", "multi_head": True}}]}
    post = {"name": "DistillationCTCLabelDecode", "model_name": ["Student", "Teacher"],
            "key": "head_out", "multi_head": True}
    ops = [{"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
           {"MultiLabelEncode": None},
           {"RecResizeImg": {"image_shape": [3, 48, 320]}},
           {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_sar", "length",
                                       "valid_ratio"]}}]
    base = _base(tmp_path, "distill", arch, loss, post, ops)
    res = build(str(base), tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
                batch_size=4, max_text_length=30, device="cpu")
    models = res.config["Architecture"]["Models"]
    for name in ("Teacher", "Student"):
        assert models[name]["pretrained"] is None  # pointed into a PaddleOCR checkout
        assert models[name]["Head"]["head_list"][1]["SARHead"]["max_text_length"] == 30
    text = (tmp_path / "o.yml").read_text(encoding="utf-8")
    assert "&" not in text


def test_piecewise_schedule(tiny, tmp_path):
    import pytest

    from rectrain.errors import ConfigError

    cfg = copy.deepcopy(PRESETS["crnn-mv3"].load())
    cfg["Global"]["epoch_num"] = 800
    cfg["Optimizer"]["lr"] = {"name": "Piecewise", "decay_epochs": [700, 800],
                              "values": [0.0005, 0.00005], "warmup_epoch": 5}
    path = tmp_path / "pw.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    # as in the official ch_PP-OCRv3_rec_distillation.yml: Paddle refuses 2 values for 2 epochs
    with pytest.raises(ConfigError, match="Optimizer.lr.values has 2 value") as err:
        build(str(path), tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
              batch_size=4, device="cpu")
    assert "Optimizer.lr.values=[0.0005, 5e-05, 5e-06]" in str(err.value)
    cfg["Optimizer"]["lr"]["decay_epochs"] = [600, 700]
    cfg["Optimizer"]["lr"]["values"] = [0.0005, 0.00005, 0.000005]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    res = build(str(path), tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
                batch_size=4, epochs=8, lr=0.001, device="cpu")
    lr = res.config["Optimizer"]["lr"]
    assert lr["decay_epochs"] == [6, 7]
    assert lr["values"] == pytest.approx([0.001, 0.0001, 0.00001])
    assert lr["warmup_epoch"] == 5  # shorter than the 8-epoch run: kept
