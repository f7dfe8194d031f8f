from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from rectrain.cli.main import main
from rectrain.config.build import create_recognition_training_config as build
from rectrain.errors import EXIT_USER_ERROR, ConfigError, DataError

from .conftest import make_data


def _ops(cfg, mode):
    return {name: params for op in cfg[mode]["dataset"]["transforms"]
            for name, params in op.items()}


def _build(tiny, out_dir, base="crnn-mv3", **kw):
    kw.setdefault("device", "cpu")
    return build(base, tiny.train, tiny.val, tiny.dict_path, out_dir / "cfg.yml", **kw)


def test_crnn_build_writes_config_base_and_diff(tiny, tmp_path):
    res = _build(tiny, tmp_path, epochs=3, batch_size=4, lr=0.002)
    cfg = yaml.safe_load(res.path.read_text(encoding="utf-8"))
    assert cfg == res.config
    g = cfg["Global"]
    assert g["use_gpu"] is False and g["epoch_num"] == 3
    assert g["character_dict_path"] == str(tiny.dict_path.resolve())
    assert cfg["Optimizer"]["lr"]["learning_rate"] == 0.002
    for mode, labels in (("Train", tiny.train), ("Eval", tiny.val)):
        ds = cfg[mode]["dataset"]
        assert ds["name"] == "SimpleDataSet"
        assert ds["data_dir"] == str(tiny.root.resolve())
        assert ds["label_file_list"] == [str(labels.resolve())]
    # 8 samples, batch 4, drop_last -> 2 steps per epoch: evaluated every epoch, logged often
    assert res.stats["steps_per_epoch_1card"] == 2
    assert g["eval_batch_step"] == [0, 2]
    assert g["print_batch_step"] == 1
    assert cfg["Train"]["loader"]["num_workers"] <= (len(__import__("os").sched_getaffinity(0)))
    assert g["save_model_dir"].startswith(str(tmp_path))
    assert g["save_res_path"].startswith(str(tmp_path))
    # the base as it was, and a readable diff with the reasons
    assert res.base_path.read_text(encoding="utf-8").startswith("# rectrain preset crnn-mv3")
    diff = res.diff_path.read_text(encoding="utf-8")
    assert "| `Global.epoch_num` | `72` | `3` | --epochs |" in diff
    assert "| `Global.eval_batch_step` | `[0, 2000]` | `[0, 2]` |" in diff
    fields = {c.field for c in res.changes}
    assert {"Train.loader.batch_size_per_card", "Eval.loader.batch_size_per_card"} <= fields
    assert all(len(c) == 4 for c in res.changes)  # (field, old, new, why)


def test_anchored_fields_stay_consistent(tiny, tmp_path, official):
    res = build(str(official / "th_PP-OCRv5_mobile_rec.yaml"), tiny.train, tiny.val,
                tiny.dict_path, tmp_path / "th.yml", max_text_length=40, batch_size=16,
                image_shape="3,48,160", device="cpu")
    cfg = res.config
    nrtr = cfg["Architecture"]["Head"]["head_list"][1]["NRTRHead"]
    ops = _ops(cfg, "Train")
    # max_text_length (&max_text_length anchor in the base) everywhere
    assert cfg["Global"]["max_text_length"] == 40
    assert nrtr["max_text_length"] == 40
    assert ops["RecConAug"]["max_text_length"] == 40
    # image shapes in every transform and the multi-scale sampler
    assert ops["RecConAug"]["image_shape"] == [48, 160, 3]
    assert _ops(cfg, "Eval")["RecResizeImg"]["image_shape"] == [3, 48, 160]
    assert cfg["Train"]["sampler"]["scales"] == [[160, 32], [160, 48], [160, 64]]
    assert cfg["Global"]["d2s_train_image_shape"] == [3, 48, 160]
    # the batch size (&bs anchor) where the multi-scale sampler reads it, and the loader
    assert cfg["Train"]["sampler"]["first_bs"] == 16
    assert cfg["Train"]["loader"]["batch_size_per_card"] == 16
    # the written file has no anchors left to go stale
    text = res.path.read_text(encoding="utf-8")
    assert "&" not in text and "*max_text_length" not in text


def test_svtr_lmdb_switches_to_label_files_and_sizes_follow(tiny, tmp_path, official):
    res = build(str(official / "rec_svtrnet.yml"), tiny.train, tiny.val, tiny.dict_path,
                tmp_path / "svtr.yml", image_shape=[3, 32, 128], batch_size=4, device="cpu")
    cfg = res.config
    for mode in ("Train", "Eval"):
        assert cfg[mode]["dataset"]["name"] == "SimpleDataSet"
        assert _ops(cfg, mode)["SVTRRecResizeImg"]["image_shape"] == [3, 32, 128]
        assert _ops(cfg, mode)["SVTRRecResizeImg"]["character_dict_path"] == str(
            tiny.dict_path.resolve())
    why = next(c.why for c in res.changes if c.field == "Train.dataset.name")
    assert "LMDB" in why
    # the STN rectifies to tps_outputsize: the backbone keeps that size
    assert cfg["Architecture"]["Backbone"]["img_size"] == [32, 100]


def test_backbone_img_size_and_out_char_num_follow_without_stn(tiny, tmp_path, official):
    # --set is applied before the derived fields too: without the STN, the backbone follows
    res = build(str(official / "rec_svtrnet.yml"), tiny.train, tiny.val, tiny.dict_path,
                tmp_path / "svtr.yml", image_shape="3,32,200", batch_size=4, device="cpu",
                overrides=["Architecture.Transform=null"])
    assert res.config["Architecture"]["Backbone"]["img_size"] == [32, 200]
    # an inconsistent --set is caught, not written
    with pytest.raises(ConfigError, match=r"Architecture.Backbone.img_size \[32, 64\] differs"):
        build(str(official / "rec_svtrnet.yml"), tiny.train, tiny.val, tiny.dict_path,
              tmp_path / "svtr.yml", batch_size=4, device="cpu",
              overrides=["Architecture.Backbone.img_size=[32, 64]"])
    res = build(str(_no_stn(official, tmp_path)), tiny.train, tiny.val, tiny.dict_path,
                tmp_path / "svtr2.yml", image_shape="3,32,200", batch_size=4, device="cpu")
    bb = res.config["Architecture"]["Backbone"]
    assert bb["img_size"] == [32, 200]
    assert bb["out_char_num"] == 50  # 25 for width 100


def _no_stn(official: Path, tmp_path: Path) -> Path:
    cfg = yaml.safe_load((official / "rec_svtrnet.yml").read_text(encoding="utf-8"))
    cfg["Architecture"]["Transform"] = None
    for mode in ("Train", "Eval"):
        for op in cfg[mode]["dataset"]["transforms"]:
            if "SVTRRecResizeImg" in op:
                op["SVTRRecResizeImg"]["image_shape"] = [3, 32, 100]
    path = tmp_path / "svtr_nostn.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_v1_config_is_refused(tiny, tmp_path, official):
    with pytest.raises(ConfigError, match="PaddleOCR 1.x config") as err:
        build(str(official / "rec_mv3_none_bilstm_ctc_v1.yml"), tiny.train, tiny.val,
              tiny.dict_path, tmp_path / "v1.yml")
    assert "Architecture.function" in str(err.value) and "Fix:" in str(err.value)


def test_server_config_refused_by_engine_knowledge(tiny, tmp_path, official):
    # unstructured-paddleocr 2.10's PPHGNetV2_B4 is the formula backbone: no text_rec
    with pytest.raises(ConfigError, match=r"Architecture\.Backbone\.text_rec") as err:
        build(str(official / "PP-OCRv5_server_rec.yml"), tiny.train, tiny.val,
              tiny.dict_path, tmp_path / "srv.yml", image_shape="3,48,160", batch_size=4,
              device="cpu")
    assert "PPHGNetV2_B4" in str(err.value)
    assert not (tmp_path / "srv.yml").exists()


@pytest.mark.parametrize("override,field", [
    ("Architecture.Backbone.name=BogusNet", "Architecture.Backbone.name"),
    ("Architecture.algorithm=CRNN2", "Architecture.algorithm"),
    ("Architecture.Neck.encoder_type=lstm", "Architecture.Neck.encoder_type"),
    ("Loss.name=CTCLos", "Loss.name"),
    ("PostProcess.name=Bogus", "PostProcess.name"),
    ("Train.dataset.name=LMDBDataSet", "Train.dataset.name"),
    ("Train.dataset.transforms.2={RecResizeImgX: {image_shape: [3, 32, 100]}}",
     "Train.dataset.transforms[2]"),
])
def test_unknown_modules_are_refused(tiny, tmp_path, override, field):
    with pytest.raises(ConfigError) as err:
        _build(tiny, tmp_path, batch_size=4, overrides=[override])
    msg = str(err.value)
    assert msg.startswith(field) and "not known to the selected engine" in msg
    assert "Fix:" in msg


def test_unknown_backbone_in_a_yaml_file_suggests_close_names(tiny, tmp_path):
    from rectrain.config.presets import PRESETS

    cfg = yaml.safe_load(PRESETS["crnn-mv3"].text())
    cfg["Architecture"]["Backbone"]["name"] = "MobileNetV33"
    path = tmp_path / "bogus.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean MobileNetV3"):
        build(str(path), tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
              batch_size=4, device="cpu")


def test_set_overrides(tiny, tmp_path):
    res = _build(tiny, tmp_path, batch_size=4, overrides=[
        "Global.save_epoch_step=7", "Train.loader.shuffle=false",
        "Global.max_text_length=12", "Global.new_flag=true"])
    g = res.config["Global"]
    assert g["save_epoch_step"] == 7 and g["new_flag"] is True
    assert res.config["Train"]["loader"]["shuffle"] is False
    # a derived field given with --set follows everywhere like --max-text-length
    assert g["max_text_length"] == 12
    assert any(c.field == "Global.save_epoch_step" and c.why == "--set" for c in res.changes)
    with pytest.raises(ConfigError, match="'global' is not a section") as err:
        _build(tiny, tmp_path, overrides=["global.epoch_num=3"])
    assert "Global" in str(err.value)
    with pytest.raises(ConfigError, match="does not exist in this config"):
        _build(tiny, tmp_path, overrides=["Train.nothere.x=1"])
    with pytest.raises(ConfigError, match="expected Section.key=value"):
        _build(tiny, tmp_path, overrides=["Global.epoch_num"])


def test_missing_files(tiny, tmp_path):
    with pytest.raises(DataError, match="label file not found"):
        build("crnn-mv3", tmp_path / "nope.txt", tiny.val, tiny.dict_path, tmp_path / "o.yml")
    with pytest.raises(DataError, match="dictionary file not found"):
        build("crnn-mv3", tiny.train, tiny.val, tmp_path / "nodict.txt", tmp_path / "o.yml")
    (tiny.root / "img" / "1.png").unlink()
    with pytest.raises(DataError, match=r"Train: 1 of 8 image\(s\)") as err:
        build("crnn-mv3", tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
              batch_size=4)
    assert "img/1.png" in str(err.value) and "--images-root" in str(err.value)
    with pytest.raises(ConfigError, match="no such weights file"):
        build("crnn-mv3", tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
              batch_size=4, pretrained=tmp_path / "w.pdparams", check_data=False)


def test_images_root_and_label_files_in_different_folders(tmp_path):
    data = make_data(tmp_path / "d")
    other = tmp_path / "lists"
    other.mkdir()
    moved = other / "val.txt"
    shutil.copy(data.val, moved)
    with pytest.raises(ConfigError, match="--images-root"):
        build("crnn-mv3", [data.train, moved], data.val, data.dict_path, tmp_path / "o.yml")
    res = build("crnn-mv3", data.train, moved, data.dict_path, tmp_path / "o.yml",
                images_root=data.root, batch_size=4, device="cpu")
    assert res.config["Eval"]["dataset"]["data_dir"] == str(data.root.resolve())


def test_unknown_characters_are_counted_with_code_points(tiny, tmp_path):
    chars = [c for c in tiny.dict_path.read_text(encoding="utf-8").split("\n") if c]
    tiny.dict_path.write_text("".join(c + "\n" for c in chars if c not in "้ั"),
                              encoding="utf-8")
    with pytest.raises(DataError) as err:
        _build(tiny, tmp_path, batch_size=4)
    msg = str(err.value)
    assert "3 of 8 label(s)" in msg  # สวัสดี, บ้าน, น้ำ
    assert "U+0E49" in msg and "U+0E31" in msg and "train.txt:1" in msg


def test_too_long_labels_say_how_many_are_dropped(tmp_path):
    words = ["a" * 30, "b" * 26, "abc", "ab", "ba", "cab", "abcab", "aa", "bb", "cc"]
    data = make_data(tmp_path / "d", words=words, size=(320, 32))
    with pytest.raises(ConfigError, match=r"Global.max_text_length: 25 is shorter than 2 of 8 "
                                          r"Train label") as err:
        build("crnn-mv3", data.train, data.val, data.dict_path, tmp_path / "o.yml",
              batch_size=4)
    assert "--max-text-length 30" in str(err.value)
    res = build("crnn-mv3", data.train, data.val, data.dict_path, tmp_path / "o.yml",
                batch_size=4, max_text_length=30, device="cpu")
    assert res.config["Global"]["max_text_length"] == 30


def test_nrtr_reserves_two_slots(tmp_path, official):
    words = ["a" * 24, "abc", "ab", "ba", "cab", "abcab", "aa", "bb", "cc", "ca"]
    data = make_data(tmp_path / "d", words=words, size=(320, 32))
    with pytest.raises(ConfigError, match="at most 23 characters") as err:
        build(str(official / "PP-OCRv5_mobile_rec.yml"), data.train, data.val, data.dict_path,
              tmp_path / "o.yml", batch_size=4)
    assert "NRTRLabelEncode" in str(err.value) and "--max-text-length 26" in str(err.value)


def test_batch_larger_than_dataset_is_refused(tiny, tmp_path):
    with pytest.raises(ConfigError, match="zero steps") as err:
        _build(tiny, tmp_path)  # preset batch 256, 8 samples, drop_last
    assert "--batch-size 8" in str(err.value)


@pytest.mark.parametrize("name, multi_char", [("ppocrv5_th_dict.txt", False),
                                              ("ppocrv5_th_dict.stale-9b0493f.txt", True)])
def test_official_thai_dictionary_quirks_are_reported_not_rewritten(tmp_path, official, name, multi_char):
    thai = official / name
    data = make_data(tmp_path / "d")
    before = thai.read_bytes()
    res = build(str(official / "th_PP-OCRv5_mobile_rec.yaml"), data.train, data.val, thai,
                tmp_path / "th.yml", batch_size=4, image_shape="3,48,160", device="cpu")
    text = "\n".join(res.warnings)
    assert "empty line" in text and "already on line" in text
    assert ("code points" in text) is multi_char  # only the stale file has the 'ωก' line
    assert thai.read_bytes() == before
    assert res.config["Global"]["character_dict_path"] == str(thai.resolve())
    assert "## Warnings" in res.diff_path.read_text(encoding="utf-8")


def _weights(path: Path, **tensors) -> Path:
    with open(path, "wb") as fh:
        pickle.dump({k: np.zeros(v, dtype="float32") for k, v in tensors.items()}, fh,
                    protocol=4)
    return path


def test_pretrained_head_size_against_dictionary(tiny, tmp_path):
    n = len([c for c in tiny.dict_path.read_text(encoding="utf-8").split("\n") if c])
    classes = n + 1 + 1  # + space (use_space_char) + CTC blank
    good = _weights(tmp_path / "good.pdparams", **{"head.fc.weight": (192, classes)})
    res = _build(tiny, tmp_path, batch_size=4, pretrained=good)
    assert res.config["Global"]["pretrained_model"] == str(good.resolve())
    bad = _weights(tmp_path / "bad.pdparams", **{"head.fc.weight": (192, 100)})
    with pytest.raises(ConfigError, match="silently re-initialize the head") as err:
        _build(tiny, tmp_path, batch_size=4, pretrained=bad)
    assert "rectrain data dict" in str(err.value) and "--allow-new-head" in str(err.value)
    res = _build(tiny, tmp_path, batch_size=4, pretrained=bad, allow_new_head=True)
    assert any("re-initialize" in w for w in res.warnings)


def test_pretrained_multihead_checks_ctc_and_nrtr(tiny, tmp_path):
    n = len([c for c in tiny.dict_path.read_text(encoding="utf-8").split("\n") if c]) + 1
    # the engine's Transformer has out_channels_list["NRTRLabelDecode"] (CTC + 3) + 1 rows
    ok = _weights(tmp_path / "mh.pdparams", **{
        "head.ctc_head.fc.weight": (120, n + 1),
        "head.gtc_head.tgt_word_prj.weight": (384, n + 5)})
    build("ppocrv5-mobile", tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
          batch_size=4, pretrained=ok, device="cpu")
    bad = _weights(tmp_path / "mh2.pdparams", **{
        "head.ctc_head.fc.weight": (120, n + 1),
        "head.gtc_head.tgt_word_prj.weight": (384, n + 9)})
    with pytest.raises(ConfigError, match="gtc_head.tgt_word_prj.weight"):
        build("ppocrv5-mobile", tiny.train, tiny.val, tiny.dict_path, tmp_path / "o.yml",
              batch_size=4, pretrained=bad, device="cpu")


def test_amp_and_device(tiny, tmp_path):
    with pytest.raises(ConfigError, match="needs a GPU"):
        _build(tiny, tmp_path, batch_size=4, amp=True)
    res = _build(tiny, tmp_path, batch_size=4, amp=True, device="gpu")
    g = res.config["Global"]
    assert g["use_gpu"] is True and g["use_amp"] is True and g["amp_level"] == "O1"


def test_cli_build_and_one_line_errors(tiny, tmp_path, capsys):
    out = tmp_path / "cli.yml"
    rc = main(["config", "build", "--base", "crnn-mv3", "--train-labels", str(tiny.train),
               "--val-labels", str(tiny.val), "--dict", str(tiny.dict_path), "-o", str(out),
               "--epochs", "1", "--batch-size", "4", "--device", "cpu",
               "--set", "Global.save_epoch_step=1"])
    assert rc == 0
    assert out.is_file() and (tmp_path / "cli.base.yml").is_file()
    assert (tmp_path / "cli.diff.md").is_file()
    assert "wrote" in capsys.readouterr().out
    rc = main(["config", "build", "--base", "crnn-mv3", "--train-labels", str(tiny.train),
               "--val-labels", str(tiny.val), "--dict", str(tiny.dict_path), "-o", str(out),
               "--batch-size", "4", "--set", "Nope.x=1"])
    assert rc == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "'Nope' is not a section" in err and "Traceback" not in err


def test_lmdb_folder_is_refused_when_the_engine_has_no_lmdb_reader(tiny, tmp_path):
    lmdb = tmp_path / "lmdb_train"
    lmdb.mkdir()
    (lmdb / "data.mdb").write_bytes(b"")
    with pytest.raises(ConfigError, match="has no LMDBDataSet"):
        build("crnn-mv3", lmdb, tiny.val, tiny.dict_path, tmp_path / "o.yml", batch_size=4)


def test_space_in_labels_needs_use_space_char(tmp_path):
    data = make_data(tmp_path / "d", words=["a b", "ab", "ba", "aa", "bb", "ab", "ba", "aa",
                                            "b a", "ab"])
    data.dict_path.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match="use_space_char") as err:
        build("svtr-tiny", data.train, data.val, data.dict_path, tmp_path / "o.yml",
              batch_size=4, device="cpu")
    assert "U+0020" in str(err.value)
    res = build("svtr-tiny", data.train, data.val, data.dict_path, tmp_path / "o.yml",
                batch_size=4, device="cpu", overrides=["Global.use_space_char=true"])
    assert res.config["Global"]["use_space_char"] is True


def test_check_training_config_on_written_config(tiny, tmp_path):
    from rectrain.config import check_training_config

    res = _build(tiny, tmp_path, batch_size=4)
    check_training_config(yaml.safe_load(res.path.read_text(encoding="utf-8")))
    res.config["Architecture"]["Head"]["name"] = "CTCHed"
    with pytest.raises(ConfigError, match="Architecture.Head.name"):
        check_training_config(res.config)


def test_out_must_not_overwrite_the_base(tiny, tmp_path, official):
    base = tmp_path / "base.yml"
    shutil.copy(official / "rec_svtrnet.yml", base)
    with pytest.raises(ConfigError, match="is the base config itself"):
        build(str(base), tiny.train, tiny.val, tiny.dict_path, base, batch_size=4)


def test_unknown_module_is_refused_before_reading_data(tmp_path, tiny):
    # bogus backbone + a label file with missing images: the module error comes first
    (tiny.root / "img" / "0.png").unlink()
    with pytest.raises(ConfigError, match="Architecture.Backbone.name"):
        _build(tiny, tmp_path, batch_size=4, overrides=["Architecture.Backbone.name=Nope"])
    with pytest.raises(ConfigError, match="expected a number"):
        _build(tiny, tmp_path, overrides=["Global.epoch_num=many"])


def test_cli_check(tiny, tmp_path, official, capsys):
    res = _build(tiny, tmp_path, batch_size=4)
    assert main(["config", "check", str(res.path)]) == 0
    assert "ok for the selected engine" in capsys.readouterr().out
    rc = main(["config", "check", str(official / "rec_mv3_none_bilstm_ctc_v1.yml")])
    assert rc == EXIT_USER_ERROR
    assert "PaddleOCR 1.x config" in capsys.readouterr().err


def test_gray_shape_on_a_colour_model_is_refused(tiny, tmp_path):
    with pytest.raises(ConfigError, match="pass --image-shape 3,32,100"):
        _build(tiny, tmp_path, batch_size=4, image_shape="1,32,100")
    with pytest.raises(ConfigError, match="expected C,H,W"):
        _build(tiny, tmp_path, batch_size=4, image_shape="32x100")


def test_ctc_columns_warning(tiny, tmp_path):
    res = _build(tiny, tmp_path, batch_size=4)  # 100 / 4 = 25 columns, max_text_length 25
    assert not any("CTC output length" in w for w in res.warnings)
    res = _build(tiny, tmp_path, batch_size=4, max_text_length=40)
    assert any("about 25 columns" in w for w in res.warnings)
    res = _build(tiny, tmp_path, batch_size=4, max_text_length=40, image_shape="3,32,200")
    assert not any("CTC output length" in w for w in res.warnings)
