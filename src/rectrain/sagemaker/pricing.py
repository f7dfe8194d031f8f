"""A small price table for the usual training instances, for an ESTIMATE of a job's cost.

Prices are SageMaker training on-demand list prices per instance-hour in us-east-1 (USD) as
published in late 2025; they differ by region and change. The real bill is in AWS Cost
Explorer. Spot jobs are billed on ``BillableTimeInSeconds`` (already reduced by the spot
discount, as SageMaker reports it), on-demand jobs on the training time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

PRICE_REGION = "us-east-1"
ON_DEMAND_USD_PER_HOUR: Dict[str, float] = {
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 0.94,
    "ml.g4dn.4xlarge": 1.505,
    "ml.g4dn.8xlarge": 2.72,
    "ml.g4dn.12xlarge": 4.89,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g5.4xlarge": 2.03,
    "ml.g5.8xlarge": 3.06,
    "ml.g5.12xlarge": 7.09,
    "ml.g5.48xlarge": 20.36,
    "ml.g6.xlarge": 1.1616,
    "ml.g6.2xlarge": 1.2544,
    "ml.g6.12xlarge": 6.6784,
    "ml.g6e.xlarge": 2.3424,
    "ml.p3.2xlarge": 3.825,
    "ml.p3.8xlarge": 14.688,
    "ml.p3.16xlarge": 28.152,
    "ml.p4d.24xlarge": 37.688,
    "ml.p5.48xlarge": 113.068,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.c5.2xlarge": 0.408,
}


@dataclass
class CostEstimate:
    instance_type: str
    instance_count: int
    usd_per_hour: Optional[float]  # None: not in the table
    training_seconds: int
    billable_seconds: int
    spot: bool

    @property
    def cost_usd(self) -> Optional[float]:
        if self.usd_per_hour is None:
            return None
        return self.billable_seconds * self.instance_count * self.usd_per_hour / 3600.0

    @property
    def on_demand_usd(self) -> Optional[float]:
        if self.usd_per_hour is None:
            return None
        return self.training_seconds * self.instance_count * self.usd_per_hour / 3600.0

    @property
    def spot_savings_pct(self) -> Optional[float]:
        if not self.spot or self.training_seconds <= 0:
            return None
        return max(0.0, 100.0 * (1.0 - self.billable_seconds / self.training_seconds))

    def describe(self) -> str:
        hours = self.billable_seconds / 3600.0
        text = (f"billable {self.billable_seconds} s ({hours:.2f} h) x {self.instance_count} "
                f"{self.instance_type}")
        if self.cost_usd is None:
            return text + f"; no price for {self.instance_type} in the table (see the AWS pricing page)"
        text += f", about ${self.cost_usd:.2f} (estimate, {PRICE_REGION} list price ${self.usd_per_hour}/h)"
        if self.spot_savings_pct is not None:
            text += (f"; spot saved {self.spot_savings_pct:.0f}% "
                     f"(on-demand would be about ${self.on_demand_usd:.2f})")
        return text


def estimate_cost(instance_type: str, instance_count: int, training_seconds: Optional[int],
                  billable_seconds: Optional[int], spot: bool) -> CostEstimate:
    training = int(training_seconds or 0)
    billable = int(billable_seconds if billable_seconds is not None else training)
    return CostEstimate(instance_type, max(1, int(instance_count or 1)),
                        ON_DEMAND_USD_PER_HOUR.get(instance_type), training, billable, bool(spot))
