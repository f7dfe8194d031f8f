"""MLflow never costs training time (issue 22, deliverable 5), against a real MLflow server
behind the fault-injecting TCP proxy of tests/faults: a server that never answers holds the
start for at most a few seconds; a resume whose run lookup hits an outage continues the same
MLflow run (never a second one); values logged while the server was away are sent when it
returns. Read back with MLflow's own client, straight from the server."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from tests.faults.proxy import OFF, FaultPlan, FaultProxy
from tests.tracking.mlflow_server import MlflowServer


@pytest.fixture
def proxied(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    from rectrain.tracking import mlflow_sink

    monkeypatch.setattr(mlflow_sink, "RETRY_S", 1.0)
    monkeypatch.setattr(mlflow_sink, "BATCH_S", 0.2)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    proxy = FaultProxy(mlflow_server.uri, seed=22).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _start(sink: Any, resume_step: int) -> float:
    started = time.monotonic()
    sink.start(params={"lr": "0.001"}, tags={}, config_file=None, resume_step=resume_step)
    return time.monotonic() - started


def test_a_hanging_then_absent_server_never_blocks_nor_splits_the_run(
        mlflow_server: MlflowServer, proxied: FaultProxy) -> None:
    from mlflow.tracking import MlflowClient

    from rectrain.tracking.mlflow_sink import START_WAIT_S, MlflowSink

    experiment = f"outage-{time.time_ns()}"
    first = MlflowSink(proxied.endpoint_url, experiment, run_name="r")
    _start(first, 0)
    first.log(1, {"loss": 1.0}, time.time())
    first.finish("interrupted", 30)
    assert first.run_id and not first.problems, first.problems

    proxied.plan = FaultPlan(hang_rate=1.0)  # accepts, never answers: the resume's lookup hangs
    second = MlflowSink(proxied.endpoint_url, experiment, run_name="r", run_id=first.run_id)
    waited = _start(second, 1)
    assert waited < START_WAIT_S + 2, f"training waited {waited:.1f} s for MLflow"
    second.log(2, {"loss": 0.5}, time.time())
    time.sleep(1.5)
    proxied.plan = FaultPlan(down=True)  # then every connection reset
    second.log(3, {"loss": 0.25}, time.time())
    time.sleep(1.5)
    proxied.plan = OFF
    second.finish("completed", 60)
    assert second.run_id == first.run_id, "a second MLflow run was started for one rectrain run"
    assert not second.problems, second.problems

    client = MlflowClient(mlflow_server.uri)  # straight to the server
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [first.run_id]
    assert sorted(m.step for m in client.get_metric_history(first.run_id, "loss")) == [1, 2, 3]
    assert client.get_run(first.run_id).info.status == "FINISHED"
