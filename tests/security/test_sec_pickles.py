"""Nothing a writer of a checkpoint prefix (or of a weights file) sends runs as code (issue 25,
items 1, 2 and 4).

Each test plants a pickle gadget (``builtins.exec``, or a ``numpy.*`` global that executes code)
in files rectrain or the engine unpickles, runs the commands a user runs (``train --resume``
from S3 on a fresh machine, ``ckpt pull`` + ``export``, ``config build --pretrained``, ``train``
with ``Global.pretrained_model``) and checks that the canary file the gadget would write is
absent and that the command failed. Controls with the same checkpoint untouched show that the
commands work, so a failure is the refusal and not a broken set-up.

The attacker can read and write the prefix: a planted file comes with a marker and a pointer
whose checksums match it, and with the run id of the run it attacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import yaml

from tests.security.gadgets import (
    BASE_PREFIX,
    BaseRun,
    ExecGadget,
    NumpyGadget,
    assert_refused,
    canary,
    canary_code,
    named_checkpoints,
    poison_every_checkpoint,
    poisoned_pickle,
    pull_and_export,
    rectrain,
    reseal,
    resume,
    shown,
)


# ----------------------------------------------------------------------------- controls
@pytest.mark.slow
def test_control_an_untouched_copy_resumes(base_run: BaseRun, prefix_of: Any, env: Dict[str, str],
                                           tmp_path: Path) -> None:
    """The set-up the attacks below use works: the base run's prefix, copied as is, resumes."""
    proc = resume(base_run, prefix_of(base_run.objects), tmp_path / "run", env)
    assert proc.returncode == 0, shown(proc)
    state = json.loads((tmp_path / "run" / "run-state.json").read_text(encoding="utf-8"))
    assert state["run_id"] == base_run.run_id


@pytest.mark.slow
def test_control_an_untouched_copy_pulls_and_exports(base_run: BaseRun, prefix_of: Any,
                                                     env: Dict[str, str], tmp_path: Path) -> None:
    pull, export = pull_and_export(base_run, prefix_of(base_run.objects), tmp_path, env)
    assert pull.returncode == 0, shown(pull)
    assert export is not None and export.returncode == 0, shown(export)
    assert (tmp_path / "model" / "model.json").is_file()


# ----------------------------------------------------------------------------- train --resume
@pytest.mark.slow
@pytest.mark.parametrize("suffix,kind", [(".pdparams", "exec"), (".pdopt", "exec"),
                                         (".states", "numpy")])
def test_resume_from_s3_runs_no_planted_pickle(base_run: BaseRun, prefix_of: Any,
                                               env: Dict[str, str], tmp_path: Path,
                                               suffix: str, kind: str) -> None:
    """A spot restart (empty run folder, run-state.json restored from S3) resumes from a
    checkpoint whose file was replaced by the attacker, marker and pointer re-sealed."""
    target = canary(tmp_path, f"resume{suffix}")
    gadget = ExecGadget(canary_code(target)) if kind == "exec" else NumpyGadget(canary_code(target))
    prefix = prefix_of(poison_every_checkpoint(base_run, suffix, gadget))
    proc = resume(base_run, prefix, tmp_path / "run", env)
    assert_refused(target, proc)


@pytest.mark.slow
def test_resume_never_adopts_the_run_of_a_planted_marker(base_run: BaseRun, prefix_of: Any,
                                                         env: Dict[str, str], tmp_path: Path) -> None:
    """No run-state.json anywhere (a new machine, the history lost or deleted by the attacker):
    `train --resume` must not take the run id of whatever marker is newest, silently. Here the
    checkpoints are clean; continuing another run is the harm (issue 25: --adopt-run ID)."""
    objects = {k: v for k, v in base_run.objects.items()
               if k.rsplit("/", 1)[-1] not in ("run-state.json", "metrics.jsonl", "problem-log.md")}
    run_dir = tmp_path / "run"
    proc = resume(base_run, prefix_of(objects), run_dir, env)
    state_file = run_dir / "run-state.json"
    adopted = state_file.is_file() and \
        json.loads(state_file.read_text(encoding="utf-8")).get("run_id") == base_run.run_id
    assert not adopted, f"the run adopted run id {base_run.run_id} from a marker\n{shown(proc)}"
    assert proc.returncode != 0, shown(proc)


@pytest.mark.slow
def test_resume_without_run_state_runs_no_planted_pickle(base_run: BaseRun, prefix_of: Any,
                                                         env: Dict[str, str], tmp_path: Path) -> None:
    """The attacker's own checkpoint (another run id, a gadget in its weights) in an otherwise
    empty prefix: adopting it is how the code gets in."""
    target = canary(tmp_path, "adopted")
    objects = {k: v for k, v in base_run.objects.items()
               if k.rsplit("/", 1)[-1] not in ("run-state.json", "metrics.jsonl", "problem-log.md")}
    objects = poison_every_checkpoint(base_run, ".pdparams", ExecGadget(canary_code(target)), objects)
    for name in named_checkpoints(objects):
        objects = reseal(objects, BASE_PREFIX, name, run_id="a77ac4e7a77a")
    proc = resume(base_run, prefix_of(objects), tmp_path / "run", env)
    assert_refused(target, proc)


# ----------------------------------------------------------------------------- ckpt pull + export
@pytest.mark.slow
@pytest.mark.parametrize("suffix,kind", [(".pdparams", "exec"), (".states", "numpy")])
def test_pull_then_export_runs_no_planted_pickle(base_run: BaseRun, prefix_of: Any,
                                                 env: Dict[str, str], tmp_path: Path,
                                                 suffix: str, kind: str) -> None:
    """`ckpt pull` of a planted checkpoint, then `export` of it (the exporter and model.json's
    metrics read the weights and the .states)."""
    target = canary(tmp_path, f"export{suffix}")
    gadget = ExecGadget(canary_code(target)) if kind == "exec" else NumpyGadget(canary_code(target))
    prefix = prefix_of(poison_every_checkpoint(base_run, suffix, gadget))
    pull, export = pull_and_export(base_run, prefix, tmp_path, env)
    assert_refused(target, pull, export)


# ----------------------------------------------------------------------------- --pretrained
def _planted_weights(base: BaseRun, tmp_path: Path, kind: str) -> Tuple[Path, Path, str]:
    """(weights file with a gadget, its canary, the gadget's function name)."""
    target = canary(tmp_path, f"pretrained-{kind}")
    gadget = ExecGadget(canary_code(target)) if kind == "exec" else NumpyGadget(canary_code(target))
    weights = tmp_path / "downloaded" / "best_accuracy.pdparams"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(poisoned_pickle(base.file("best_accuracy", ".pdparams"), gadget))
    return weights, target, gadget.__reduce__()[0].__name__


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["exec", "numpy"])
def test_config_build_pretrained_runs_no_planted_pickle(base_run: BaseRun, env: Dict[str, str],
                                                        tmp_path: Path, kind: str) -> None:
    """`config build --pretrained W`: the step users run to inspect weights they downloaded.
    The refusal names the global it refused (issue 25, deliverable 1)."""
    weights, target, func = _planted_weights(base_run, tmp_path, kind)
    data = base_run.data
    proc = rectrain(["config", "build", "--base", base_run.config, "--train-labels", data["train"],
                     "--val-labels", data["val"], "--dict", data["dict"], "--device", "cpu",
                     "--pretrained", weights, "-o", tmp_path / "built.yml"], env)
    assert_refused(target, proc)
    assert func in proc.stdout + proc.stderr, f"the refusal does not name {func}\n{shown(proc)}"


@pytest.mark.slow
def test_control_config_build_pretrained_accepts_clean_weights(base_run: BaseRun, env: Dict[str, str],
                                                               tmp_path: Path) -> None:
    data = base_run.data
    weights = tmp_path / "best_accuracy.pdparams"
    weights.write_bytes(base_run.file("best_accuracy", ".pdparams"))
    proc = rectrain(["config", "build", "--base", base_run.config, "--train-labels", data["train"],
                     "--val-labels", data["val"], "--dict", data["dict"], "--device", "cpu",
                     "--pretrained", weights, "-o", tmp_path / "built.yml"], env)
    assert proc.returncode == 0, shown(proc)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["exec", "numpy"])
def test_train_with_pretrained_runs_no_planted_pickle(base_run: BaseRun, env: Dict[str, str],
                                                      tmp_path: Path, kind: str) -> None:
    """`train` with ``Global.pretrained_model`` naming planted weights (rectrain's head check
    reads them, then the engine's ``paddle.load``)."""
    weights, target, _ = _planted_weights(base_run, tmp_path, kind)
    config = yaml.safe_load(base_run.config.read_text(encoding="utf-8"))
    config["Global"]["pretrained_model"] = str(weights)
    path = tmp_path / "finetune.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    proc = rectrain(["train", "--config", path, "--run-dir", tmp_path / "run", "--device", "cpu",
                     "--max-steps", "1", "--display", "plain", "--no-tensorboard"], env)
    assert_refused(target, proc)
