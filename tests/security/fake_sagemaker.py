"""The one part of AWS that cannot run here, the SageMaker control plane, as a small HTTP server
for black-box CLI tests: boto3 reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER`` (botocore's
service-specific endpoint variable), speaking SageMaker's own JSON protocol
(``X-Amz-Target: SageMaker.<Operation>``). Each answer is validated against botocore's
SageMaker service model before it is served, as botocore's Stubber validates responses.

Only ``DescribeTrainingJob`` is answered (what ``rectrain sagemaker download`` calls); an
unknown job gets SageMaker's ``ValidationException`` ("Requested resource not found").
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional

REGION = "us-east-1"
T0 = _dt.datetime(2026, 12, 5, 8, 0, 0, tzinfo=_dt.timezone.utc)


def describe_response(job: str, model_artifacts: str) -> Dict[str, Any]:
    """A completed job's DescribeTrainingJob answer whose model is ``model_artifacts``."""
    return {
        "TrainingJobName": job,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{job}",
        "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {
            "TrainingImage": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/rectrain:0.1.0",
            "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": T0,
        "OutputDataConfig": {"S3OutputPath": model_artifacts.rsplit("/", 3)[0]},
        "ModelArtifacts": {"S3ModelArtifacts": model_artifacts},
        "TrainingTimeInSeconds": 600, "BillableTimeInSeconds": 600,
    }


def _validated(operation: str, response: Dict[str, Any]) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("sagemaker")
    validate_parameters(response, model.operation_model(operation).output_shape)


def _wire(value: Any) -> Any:
    """JSON protocol: timestamps are epoch seconds."""
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


class FakeSageMaker:
    """``with FakeSageMaker() as sm: sm.add_job(name, response); env[...] = sm.endpoint_url``."""

    def __init__(self) -> None:
        self.jobs: Dict[str, Dict[str, Any]] = {}
        self.calls: list = []
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_job(self, name: str, response: Dict[str, Any]) -> None:
        _validated("DescribeTrainingJob", response)
        self.jobs[name] = response

    def __enter__(self) -> FakeSageMaker:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                target = self.headers.get("X-Amz-Target", "")
                fake.calls.append((target, body))
                job = fake.jobs.get(body.get("TrainingJobName", ""))
                if target == "SageMaker.DescribeTrainingJob" and job is not None:
                    self._send(200, _wire(job))
                else:
                    self._send(400, {"__type": "ValidationException",
                                     "message": "Requested resource not found."})

            def _send(self, status: int, data: Dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
