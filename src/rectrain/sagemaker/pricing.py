"""An ESTIMATE of a job's cost from the one instance table's prices
(:data:`rectrain.machine.instances.TYPES`).

Prices are SageMaker training on-demand list prices per instance-hour in us-east-1 (USD) as
published in late 2025; they differ by region and change. The real bill is in AWS Cost
Explorer. Spot jobs are billed on ``BillableTimeInSeconds`` (already reduced by the spot
discount, as SageMaker reports it), on-demand jobs on the training time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rectrain.machine.instances import PRICE_REGION, price_per_hour


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
                        price_per_hour(instance_type), training, billable, bool(spot))
