"""The experiment-tracking flags shared by `rectrain train` (and the notebook's equivalent
keyword arguments): MLflow URI and experiment, TensorBoard on/off."""

from __future__ import annotations

from typing import Any

from rectrain.cli.edge import settings


def add_tracking_args(p: Any) -> None:
    g = p.add_argument_group("experiment tracking (docs/tracking.md)")
    g.add_argument("--mlflow-uri", metavar="URI",
                   help="log params, metrics and artifacts to this MLflow tracking server "
                        "(default: $MLFLOW_TRACKING_URI; unset: no MLflow)")
    g.add_argument("--mlflow-experiment", metavar="NAME",
                   help="MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else rectrain)")
    g.add_argument("--no-mlflow", action="store_true",
                   help="do not log to MLflow even when MLFLOW_TRACKING_URI is set")
    g.add_argument("--no-tensorboard", action="store_true",
                   help="do not write TensorBoard events (default: RUN_DIR/tensorboard)")


def tracking_options(args: Any) -> Any:
    from rectrain.tracking import TrackingOptions

    return TrackingOptions(mlflow_uri=getattr(args, "mlflow_uri", None),
                           experiment=getattr(args, "mlflow_experiment", None),
                           mlflow=not getattr(args, "no_mlflow", False),
                           tensorboard=not getattr(args, "no_tensorboard", False),
                           tensorboard_dir=settings(args).tensorboard_dir)
