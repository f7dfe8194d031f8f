"""Keys the engine never reads: parameters of classes that swallow ``**kwargs``, typos of
sections and Global/loader keys, with the closest valid name; ``--set`` values checked like
the flags (config.params, config.modules.check_keys, config.checks.check_values)."""

from __future__ import annotations

import ast
import copy

import pytest

from rectrain.config.checks import check_options, check_values
from rectrain.config.knowledge import engine_knowledge
from rectrain.config.modules import check_keys, check_modules
from rectrain.config.overrides import take_options
from rectrain.config.params import kwargs_use
from rectrain.config.presets import resolve_base
from rectrain.engine import find_engine
from rectrain.errors import ConfigError


def _init(src: str) -> ast.FunctionDef:
    node = ast.parse(src).body[0]
    assert isinstance(node, ast.ClassDef)
    init = node.body[0]
    assert isinstance(init, ast.FunctionDef)
    return init


@pytest.mark.parametrize("src, is_open, names", [
    ("class A:\n def __init__(self, a, **kwargs):\n  self.a = a\n", False, set()),
    ("class A:\n def __init__(self, **kw):\n  self.g = kw.get('group_lr', False)\n  x = kw['b']\n"
     "  if 'c' in kw: pass\n", False, {"group_lr", "b", "c"}),
    ("class A:\n def __init__(self, **kw):\n  self.enc = Enc(**kw)\n", True, set()),
    ("class A:\n def __init__(self, **kw):\n  self.kw = kw\n", True, set()),
])
def test_kwargs_use_tells_ignored_read_and_passed_on(src, is_open, names):
    assert kwargs_use(_init(src)) == (is_open, names)


def test_super_init_of_a_layer_takes_only_the_layers_parameters():
    init = _init("class A(nn.Layer):\n def __init__(self, **kw):\n  super().__init__(**kw)\n")
    assert kwargs_use(init, ["nn.Layer"]) == (False, {"name_scope", "dtype"})
    assert kwargs_use(init, ["Other"])[0] is True


@pytest.fixture(scope="module")
def knowledge():
    return engine_knowledge(find_engine(None))


@pytest.fixture(scope="module")
def preset():
    return resolve_base("crnn-mv3")[0]


def test_the_engine_classes_that_ignore_kwargs_are_closed(knowledge):
    mv3 = knowledge.classes[("backbone", "MobileNetV3")]
    assert not mv3.var_kw and "scale" in mv3.params
    adam = knowledge.classes[("optimizer", "Adam")]
    assert not adam.var_kw and "group_lr" in adam.params  # read from kwargs by name


@pytest.mark.parametrize("path, key, match", [
    (("Architecture", "Backbone"), "scael", "Backbone.scael.*did you mean 'scale'"),
    (("Global",), "epoch_nm", "Global.epoch_nm.*did you mean 'epoch_num'"),
    (("Train", "loader"), "batch_size_per_crd", "did you mean 'batch_size_per_card'"),
    (("Optimizer",), "beta_1", "Optimizer.beta_1.*did you mean 'beta1'"),
    (("Optimizer", "lr"), "warmup_epochs", "Optimizer.lr.warmup_epochs.*did you mean 'warmup_epoch'"),
    (("Loss",), "use_focal", "Loss.use_focal.*CTCLoss"),
    (("Metric",), "main_indicater", "did you mean 'main_indicator'"),
    ((), "Trian", "Trian.*did you mean 'Train'"),
])
def test_unknown_keys_are_refused_with_the_closest_name(knowledge, preset, path, key, match):
    check_keys(preset, knowledge)
    cfg = copy.deepcopy(preset)
    node = cfg
    for p in path:
        node = node[p]
    node[key] = {} if key == "Trian" else 1
    with pytest.raises(ConfigError, match=match):
        check_modules(cfg, knowledge, datasets=False)


def test_a_data_operator_typo_is_refused_but_global_keys_merged_into_it_are_not(knowledge, preset):
    cfg = copy.deepcopy(preset)
    ops = cfg["Train"]["dataset"]["transforms"]
    resize = next(op for op in ops if "RecResizeImg" in op)
    resize["RecResizeImg"]["image_shap"] = [3, 32, 100]
    with pytest.raises(ConfigError, match="RecResizeImg.image_shap.*did you mean 'image_shape'"):
        check_keys(cfg, knowledge)


def test_an_unread_key_without_a_close_name_is_only_noted(knowledge, preset):
    cfg = copy.deepcopy(preset)
    cfg["Global"]["debug"] = False  # in the official configs, read by no engine code
    cfg["Global"]["character_type"] = "ch"  # PaddleOCR 2.0's key
    check_keys(cfg, knowledge)


@pytest.mark.parametrize("key, value, match", [
    ("Global.epoch_num", -1, r"--set Global.epoch_num=-1: must be at least 1"),
    ("Train.loader.batch_size_per_card", 0, r"--set Train.loader.batch_size_per_card=0"),
    ("Global.max_text_length", 0, r"--set Global.max_text_length=0"),
    ("Optimizer.lr.learning_rate", -1, r"--set Optimizer.lr.learning_rate=-1"),
])
def test_set_values_get_the_checks_of_their_flags(key, value, match):
    opts = {"epochs": None, "lr": None, "batch_size": None, "max_text_length": None,
            "pretrained": None}
    sources: dict = {}
    take_options([(tuple(key.split(".")), value)], opts, sources)
    with pytest.raises(ConfigError, match=match):
        check_options(device="gpu", amp=False, flags=sources, **{k: opts[k] for k in
                      ("epochs", "batch_size", "max_text_length", "lr")})


@pytest.mark.parametrize("path, value", [
    (("Global", "epoch_num"), 0), (("Eval", "loader", "batch_size_per_card"), 0),
    (("Optimizer", "lr", "learning_rate"), 0), (("Global", "max_text_length"), "25"),
])
def test_check_values_on_a_written_config(preset, path, value):
    check_values(preset)
    cfg = copy.deepcopy(preset)
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=".".join(path)):
        check_values(cfg)
