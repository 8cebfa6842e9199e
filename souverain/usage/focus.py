"""`souverain usage --format csv`: the daily roll-up in FinOps FOCUS 1.2 columns, for
chargeback tools that read FOCUS (docs/usage.md, "FOCUS export").

One line per (day, tenant, key, cost centre, model, route, data class). The gateway is
the provider of an internal service here: the charge period is the UTC day, the billing
period its calendar month, the cost what the price catalogue says (no discounts or
commitments, so ListCost = ContractedCost = EffectiveCost = BilledCost). FOCUS columns
that describe a cloud bill the gateway does not have (commitment discounts, capacity
reservations, regions, invoices, SKU price details) are left out; the gateway's own
figures are `x_`-prefixed columns, as FOCUS asks of custom columns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_KeyId",
    "x_CostCentre",
    "x_DataClass",
    "x_Requests",
    "x_RefusedRequests",
    "x_InputTokens",
    "x_OutputTokens",
    "x_ReasoningTokens",
    "x_CachedTokens",
)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_csv(rows: Iterable[dict[str, Any]], currency: str, account: str = "souverain") -> str:
    """`rows`: totals grouped by every dimension (store.DIMENSIONS)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        day = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(r["day"]))
        month = day.replace(day=1)
        following = month.replace(year=month.year + (month.month == 12), month=month.month % 12 + 1)
        cost = f"{Decimal(r['cost_micros']).scaleb(-6):f}"
        tokens = r["input_tokens"] + r["output_tokens"]
        tags = {"tenant": r["tenant"], "key": r["key_id"], "data_class": r["data_class"]}
        if r["cost_centre"]:
            tags["cost_centre"] = r["cost_centre"]
        writer.writerow(
            (
                cost,
                account,
                account,
                currency,
                _iso(month),
                _iso(following),
                "Usage",
                "",  # not a correction
                f"{r['model']} on route {r['route'] or 'none'}: {r['requests']} requests, {tokens} tokens",
                "Usage-Based",
                _iso(day),
                _iso(day + timedelta(days=1)),
                tokens,
                "Tokens",
                cost,
                cost,
                cost,
                tokens,
                "Tokens",
                "Souverain",
                "Souverain",
                "Souverain",
                r["route"],
                r["route"],
                "AI route",
                "AI and Machine Learning",
                "Souverain AI gateway",
                r["model"],
                r["tenant"],
                r["tenant"],
                json.dumps(tags, sort_keys=True, separators=(",", ":")),
                r["key_id"],
                r["cost_centre"],
                r["data_class"],
                r["requests"],
                r["refused"],
                r["input_tokens"],
                r["output_tokens"],
                r["reasoning_tokens"],
                r["cached_tokens"],
            )
        )
    return out.getvalue()
