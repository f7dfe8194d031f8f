"""SageMaker hyperparameter tuning: the ``CreateHyperParameterTuningJob`` request built from
the same job config as ``launch`` (static hyperparameters, metric definitions, spot,
checkpoints), validated against botocore's service model; and the tuning job's status and
best training job.

Ranges are written ``NAME=KIND:ARGS``::

    lr=log:1e-4:1e-2          continuous, logarithmic scale
    lr=linear:0.001:0.01      continuous, linear scale
    epochs=int:20:60          integer, linear (intlog: logarithmic)
    batch_size=choice:64,128  categorical

Only the hyperparameters the container reads can be tuned (:data:`TUNABLE`). The objective
is one of the job's metric definitions (``eval:acc``; ``eval_acc`` and ``eval/acc`` are
accepted), maximised unless it is a loss or a cost.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from rectrain.errors import ConfigError, UserError
from rectrain.sagemaker.aws import call
from rectrain.sagemaker.jobconfig import JobConfig
from rectrain.sagemaker.request import (
    build_training_job_request,
    request_problems,
    s3_prefix,
    validate_request,
)

TUNING_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
# SageMaker adds this hyperparameter (the objective's metric name) to every training job a tuning
# job launches; AWS's own framework containers tell a trial by it (sagemaker-tensorflow-container
# then keeps checkpoints under the trial's TRAINING_JOB_NAME, as rectrain's container does).
TUNING_MARK = "_tuning_objective_metric"
# The shipped model is the best checkpoint (best_accuracy), so the objective is its accuracy:
# the engine's "best metric" line after every evaluation (the last value SageMaker records is
# the shipped checkpoint's), not eval:acc, the last evaluation's.
DEFAULT_OBJECTIVE = "eval:best_acc"
TUNABLE = {"lr": "float", "epochs": "int", "batch_size": "int", "max_text_length": "int",
           "checkpoint_every_min": "float"}
KINDS = {"linear": "Linear", "log": "Logarithmic", "reverselog": "ReverseLogarithmic",
         "int": "Linear", "intlog": "Logarithmic", "choice": None}
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
MINIMIZE_WORDS = ("loss", "cost", "norm_edit_dis_err")


@dataclass
class ParamRange:
    name: str
    kind: str  # linear | log | reverselog | int | intlog | choice
    values: List[str]

    def as_request(self) -> Dict[str, Any]:
        if self.kind == "choice":
            return {"Name": self.name, "Values": list(self.values)}
        return {"Name": self.name, "MinValue": self.values[0], "MaxValue": self.values[1],
                "ScalingType": KINDS[self.kind]}

    @property
    def section(self) -> str:
        if self.kind == "choice":
            return "CategoricalParameterRanges"
        return "IntegerParameterRanges" if self.kind in ("int", "intlog") else "ContinuousParameterRanges"


def parse_param(text: str) -> ParamRange:
    """``lr=log:1e-4:1e-2`` -> a :class:`ParamRange`. Raises :class:`ConfigError` with the fix."""
    example = "write it as lr=log:1e-4:1e-2, epochs=int:20:60 or batch_size=choice:64,128."
    name, sep, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    kind, sep2, args = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or not sep2 or not name or kind not in KINDS:
        raise ConfigError(f"--param {text!r}: cannot read it (kinds: {', '.join(KINDS)}).", example)
    if name not in TUNABLE:
        raise ConfigError(f"--param {text!r}: {name!r} is not a hyperparameter the container reads.",
                          f"tune one of {', '.join(sorted(TUNABLE))}; other config fields stay fixed "
                          "(training.overrides in the job config).")
    want = TUNABLE[name]
    if kind == "choice":
        values = [v.strip() for v in args.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--param {text!r}: no values.", example)
        for v in values:
            _check_number(v, want, text)
        if len(set(values)) != len(values):
            raise ConfigError(f"--param {text!r}: a value is repeated.", "list each value once.")
        return ParamRange(name, kind, values)
    parts = [p.strip() for p in args.split(":")]
    if len(parts) != 2:
        raise ConfigError(f"--param {text!r}: a range needs MIN:MAX.", example)
    if kind in ("int", "intlog") and want != "int":
        raise ConfigError(f"--param {text!r}: {name} is a real number.", f"write {name}=log:MIN:MAX.")
    if kind not in ("int", "intlog") and want == "int":
        raise ConfigError(f"--param {text!r}: {name} is a whole number.",
                          f"write {name}=int:MIN:MAX or {name}=choice:A,B.")
    low, high = (_check_number(p, want, text) for p in parts)
    if not low < high:
        raise ConfigError(f"--param {text!r}: MIN must be below MAX.", example)
    if kind in ("log", "intlog") and low <= 0:
        raise ConfigError(f"--param {text!r}: a logarithmic range must be above zero.",
                          "use a positive MIN, or linear.")
    if kind == "reverselog" and not (low >= 0 and high < 1):
        raise ConfigError(f"--param {text!r}: reverselog needs 0 <= MIN < MAX < 1.", "use log or linear.")
    return ParamRange(name, kind, parts)


def _check_number(value: str, want: str, text: str) -> float:
    try:
        number = int(value) if want == "int" else float(value)
    except ValueError as exc:
        raise ConfigError(f"--param {text!r}: {value!r} is not {'a whole' if want == 'int' else 'a'} "
                          "number.", "fix the value.") from exc
    if number <= 0 and want == "int":
        raise ConfigError(f"--param {text!r}: {value} must be 1 or more.", "fix the value.")
    return float(number)


def objective_metric(objective: str, definitions: Sequence[Dict[str, str]]) -> str:
    names = [d["Name"] for d in definitions]
    wanted = objective.strip()
    for candidate in (wanted, wanted.replace("/", ":"), wanted.replace("_", ":", 1)):
        if candidate in names:
            return candidate
    raise ConfigError(f"--objective {objective!r} is not one of the job's metrics.",
                      "use one of: " + ", ".join(names) + " (eval:acc is the usual one).")


def objective_type(metric: str, given: Optional[str] = None) -> str:
    if given:
        value = given.strip().capitalize()
        if value not in ("Maximize", "Minimize"):
            raise ConfigError(f"--objective-type {given!r}: use maximize or minimize.", "fix the flag.")
        return value
    return "Minimize" if any(w in metric.split(":")[-1] for w in MINIMIZE_WORDS) else "Maximize"


def tuning_job_name(job: JobConfig, now: Optional[_dt.datetime] = None) -> str:
    """``<name>-<yymmdd-HHMMSS>``: SageMaker allows 32 characters for a tuning job name."""
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", job.name).strip("-") or "rectrain"
    if job.exact_name:
        name = base
    else:
        stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%y%m%d-%H%M%S")
        name = f"{base[:32 - len(stamp) - 1].rstrip('-')}-{stamp}"
    if not TUNING_NAME_RE.match(name):
        raise ConfigError(f"tuning job name {name!r} is not valid: SageMaker wants 1-32 letters, digits "
                          "and hyphens.", "shorten name in the job config.")
    return name


def tuning_checkpoint_uri(job: JobConfig, name: str) -> str:
    """The prefix every trial of tuning job ``name`` syncs (one ``CheckpointConfig`` for all):
    ``checkpoint_s3``, default ``<output>/<tuning job>/checkpoints/``. Each trial keeps its own
    below it, in :func:`trial_checkpoint_uri`."""
    return s3_prefix(job.checkpoint_s3 or f"{str(job.output).rstrip('/')}/{name}/checkpoints")


def trial_checkpoint_uri(tuning_checkpoints: str, training_job: str) -> str:
    """Where trial ``training_job`` keeps its checkpoints: ``<tuning prefix><training job>/``
    (the container writes them in ``/opt/ml/checkpoints/<TRAINING_JOB_NAME>/``)."""
    return s3_prefix(f"{s3_prefix(tuning_checkpoints)}{training_job}")


def trial_job_name(tuning_job: str, number: int) -> str:
    """The name SageMaker gives a tuning job's ``number``-th training job,
    ``<tuning job>-<NNN>-<8 hex>`` (e.g. ``thai-rec-261205-120000-003-1a2b3c4d``)."""
    import hashlib

    tail = hashlib.sha256(f"{tuning_job}/{number}".encode()).hexdigest()[:8]
    return f"{tuning_job}-{number:03d}-{tail}"


def trial_request(tuning: Dict[str, Any], number: int, tuned: Dict[str, str]) -> Dict[str, Any]:
    """The ``CreateTrainingJob`` request of a tuning job's ``number``-th trial, as SageMaker
    derives it from the tuning request's ``TrainingJobDefinition``: the static hyperparameters,
    the tuned values, and ``_tuning_objective_metric``; the one ``CheckpointConfig`` every trial
    shares. Validated against botocore's model (``run-local`` runs it)."""
    definition = tuning["TrainingJobDefinition"]
    metric = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    request: Dict[str, Any] = {
        "TrainingJobName": trial_job_name(tuning["HyperParameterTuningJobName"], number),
        "HyperParameters": {**definition["StaticHyperParameters"], **{k: str(v) for k, v in tuned.items()},
                            TUNING_MARK: metric},
        **{k: v for k, v in definition.items() if k != "StaticHyperParameters"},
    }
    validate_request(request)
    return request


def build_tuning_request(job: JobConfig, params: Sequence[ParamRange], *, objective: str = DEFAULT_OBJECTIVE,
                         objective_kind: Optional[str] = None, max_jobs: int = 10, max_parallel: int = 2,
                         early_stopping: str = "off", strategy: str = "Bayesian",
                         now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
    """The keyword arguments of ``create_hyper_parameter_tuning_job``. Pure: no AWS call.
    Raises :class:`ConfigError` for a request SageMaker would refuse."""
    if not params:
        raise ConfigError("nothing to tune.", "pass at least one --param, e.g. --param lr=log:1e-4:1e-2.")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ConfigError("a hyperparameter is given twice with --param.", "give each one once.")
    if max_jobs < 1 or max_parallel < 1:
        raise ConfigError("--max-jobs and --max-parallel must be 1 or more.", "fix the numbers.")
    if max_parallel > max_jobs:
        raise ConfigError(f"--max-parallel {max_parallel} is more than --max-jobs {max_jobs}.",
                          "lower --max-parallel.")
    strategy = next((s for s in STRATEGIES if s.lower() == strategy.lower()), "")
    if not strategy:
        raise ConfigError("--strategy must be one of " + ", ".join(STRATEGIES) + ".", "fix the flag.")
    if early_stopping.lower() not in ("auto", "off"):
        raise ConfigError(f"--early-stopping {early_stopping!r}: use auto or off.", "fix the flag.")
    if strategy == "Grid" and any(p.kind != "choice" for p in params):
        raise ConfigError("the Grid strategy takes only choice: parameters.", "use choice:A,B or Bayesian.")
    name = tuning_job_name(job, now)
    single = build_training_job_request(job, now)  # validated CreateTrainingJob request
    metric = objective_metric(objective, single["AlgorithmSpecification"]["MetricDefinitions"])
    static = {k: v for k, v in single["HyperParameters"].items() if k not in names}
    definition: Dict[str, Any] = {
        "StaticHyperParameters": static,
        "AlgorithmSpecification": {
            "TrainingImage": single["AlgorithmSpecification"]["TrainingImage"],
            "TrainingInputMode": single["AlgorithmSpecification"]["TrainingInputMode"],
            "MetricDefinitions": single["AlgorithmSpecification"]["MetricDefinitions"]},
        # one prefix for every trial (SageMaker restores all of it into each trial's
        # /opt/ml/checkpoints): the container keeps a trial's checkpoints in a folder of its own
        # training job name (TUNING_MARK, TRAINING_JOB_NAME), so trials never resume each other
        "CheckpointConfig": {"S3Uri": tuning_checkpoint_uri(job, name),
                             "LocalPath": single["CheckpointConfig"]["LocalPath"]},
    }
    for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
                "EnableManagedSpotTraining", "VpcConfig", "EnableNetworkIsolation",
                "EnableInterContainerTrafficEncryption", "RetryStrategy", "Environment"):
        if key in single:
            definition[key] = single[key]
    definition["ResourceConfig"] = {k: v for k, v in definition["ResourceConfig"].items()
                                    if k != "KeepAlivePeriodInSeconds"}
    ranges: Dict[str, List[Dict[str, Any]]] = {}
    for p in params:
        ranges.setdefault(p.section, []).append(p.as_request())
    request: Dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": objective_type(metric, objective_kind),
                                                 "MetricName": metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel},
            "ParameterRanges": ranges,
            "TrainingJobEarlyStoppingType": "Auto" if early_stopping.lower() == "auto" else "Off",
        },
        "TrainingJobDefinition": definition,
        "Tags": single["Tags"],
    }
    if strategy == "Hyperband":
        request["HyperParameterTuningJobConfig"].pop("TrainingJobEarlyStoppingType")
    validate_tuning_request(request)
    return request


# ------------------------------------------------------------------ validation
def tuning_request_problems(request: Dict[str, Any]) -> List[str]:
    """Every way ``request`` breaks botocore's CreateHyperParameterTuningJob input shape."""
    return request_problems(request, "CreateHyperParameterTuningJob")


def validate_tuning_request(request: Dict[str, Any]) -> None:
    problems = tuning_request_problems(request)
    if problems:
        raise ConfigError("the CreateHyperParameterTuningJob request is not valid: "
                          + "; ".join(problems) + ".", "fix the named fields in the job config or flags.")


# ------------------------------------------------------------------ status and best
@dataclass
class TrialSummary:
    name: str
    status: str
    objective: Optional[float]
    hyperparameters: Dict[str, str]
    seconds: Optional[float] = None


def tuning_status(name: str, client: Any) -> Dict[str, Any]:
    """``{"name", "status", "objective", "type", "counters", "best", "trials"}``: the trials
    sorted by their objective value, best first (jobs without a value last)."""
    desc = call(client.describe_hyper_parameter_tuning_job, "sagemaker:DescribeHyperParameterTuningJob",
                 name, HyperParameterTuningJobName=name)
    objective = desc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    trials: List[TrialSummary] = []
    token: Optional[str] = None
    while True:
        order = "Descending" if objective["Type"] == "Maximize" else "Ascending"
        kwargs: Dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100,
                                  "SortBy": "FinalObjectiveMetricValue", "SortOrder": order}
        if token:
            kwargs["NextToken"] = token
        page = call(client.list_training_jobs_for_hyper_parameter_tuning_job,
                     "sagemaker:ListTrainingJobsForHyperParameterTuningJob", name, **kwargs)
        for s in page.get("TrainingJobSummaries", []):
            final = s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            seconds = None
            if s.get("TrainingStartTime") and s.get("TrainingEndTime"):
                seconds = (s["TrainingEndTime"] - s["TrainingStartTime"]).total_seconds()
            trials.append(TrialSummary(s["TrainingJobName"], s["TrainingJobStatus"], final.get("Value"),
                                       dict(s.get("TunedHyperParameters") or {}), seconds))
        token = page.get("NextToken")
        if not token:
            break
    sign = -1.0 if objective["Type"] == "Maximize" else 1.0
    trials.sort(key=lambda t: (t.objective is None, sign * (t.objective or 0.0)))
    best = (desc.get("BestTrainingJob") or {}).get("TrainingJobName")
    return {"name": name, "status": desc["HyperParameterTuningJobStatus"],
            "objective": objective["MetricName"], "type": objective["Type"],
            "counters": desc.get("TrainingJobStatusCounters", {}), "best": best, "trials": trials}


def format_tuning_status(status: Dict[str, Any]) -> str:
    trials: List[TrialSummary] = status["trials"]
    names = sorted({k for t in trials for k in t.hyperparameters})
    counters = status["counters"]
    lines = [f"{status['name']}: {status['status']}  objective {status['objective']} "
             f"({status['type'].lower()})  "
             + ", ".join(f"{k.lower()} {v}" for k, v in counters.items() if v)]
    header = ["training job", "status", status["objective"]] + names
    rows = [[t.name + (" *" if t.name == status["best"] else ""), t.status,
             "" if t.objective is None else f"{t.objective:.4f}"]
            + [t.hyperparameters.get(n, "") for n in names] for t in trials]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    if not trials:
        lines.append("(no training job yet)")
    return "\n".join(lines)


def best_training_job(name: str, client: Any) -> Dict[str, Any]:
    """The best trial: its name, objective value, tuned and full hyperparameters, the model
    artifact (the trial's own ``model.tar.gz``: its best checkpoint, exported), the trial's own
    checkpoint prefix, and a ``training:`` section to put in a job config to train it again."""
    desc = call(client.describe_hyper_parameter_tuning_job, "sagemaker:DescribeHyperParameterTuningJob",
                 name, HyperParameterTuningJobName=name)
    best = desc.get("BestTrainingJob")
    if not best:
        raise UserError(f"tuning job {name} has no best training job yet "
                        f"({desc['HyperParameterTuningJobStatus']}).",
                        f"wait until a training job completes: rectrain sagemaker tune status {name}.")
    job = call(client.describe_training_job, "sagemaker:DescribeTrainingJob", best["TrainingJobName"],
                TrainingJobName=best["TrainingJobName"])
    hyper = dict(job.get("HyperParameters") or {})
    training = {k: v for k, v in hyper.items() if not k.startswith("_") and not k.startswith("sagemaker_")}
    final = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    shared = (job.get("CheckpointConfig") or {}).get("S3Uri")
    return {"tuning_job": name, "training_job": best["TrainingJobName"],
            "checkpoints": trial_checkpoint_uri(shared, best["TrainingJobName"]) if shared else None,
            "objective": final.get("MetricName"), "value": final.get("Value"),
            "tuned": dict(best.get("TunedHyperParameters") or {}), "hyperparameters": training,
            "model": (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
            "training_config": _training_section(training)}


def _training_section(hyper: Dict[str, str]) -> Dict[str, Any]:
    """Hyperparameter strings back to the job config's ``training:`` types."""
    import json

    out: Dict[str, Any] = {}
    for key, value in hyper.items():
        if key in ("epochs", "batch_size", "max_text_length"):
            out[key] = int(float(value))
        elif key in ("lr", "checkpoint_every_min"):
            out[key] = float(value)
        elif key in ("image_shape", "overrides"):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        elif key == "amp":
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    return out
