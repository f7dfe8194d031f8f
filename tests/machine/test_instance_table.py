"""The one instance table: every type belongs to a family rectrain knows, its GPUs agree with
the family's accelerator, and what reads it (the cost estimate, the loader bench) reads it."""

from __future__ import annotations

import pytest

from rectrain.machine.instances import FAMILIES, TYPES, gpu_types, price_per_hour
from rectrain.sagemaker.pricing import estimate_cost


def test_every_type_fits_its_family() -> None:
    for t in TYPES.values():
        family = t.family
        assert family is not None and family.name in FAMILIES, t.name
        assert (t.gpus > 0) == (family.accelerator == "nvidia"), t.name
        assert t.vcpus > 0 and t.memory_gib > 0 and (t.usd_per_hour or 0) > 0, t.name
        if t.gpus:
            assert t.gpu == family.gpu and t.gpu


def test_the_cost_estimate_and_the_bench_read_the_table() -> None:
    assert price_per_hour("ml.g5.xlarge") == TYPES["ml.g5.xlarge"].usd_per_hour == 1.408
    assert estimate_cost("ml.g5.xlarge", 2, 3600, None, spot=False).cost_usd == pytest.approx(2 * 1.408)
    assert price_per_hour("ml.g6e.48xlarge") is None
    assert [t.name for t in gpu_types()] == [t.name for t in TYPES.values() if t.gpus]
