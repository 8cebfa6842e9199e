"""What `souverain usage` and `GET /admin/usage` answer: totals over the daily roll-up,
as JSON, an aligned table, or FOCUS 1.2 CSV (focus.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from souverain.usage.focus import focus_csv
from souverain.usage.store import DIMENSIONS, UsageDb

EPOCH = date(1970, 1, 1)


class QueryError(ValueError):
    """A question the report cannot answer; the message says why, for the caller."""


@dataclass(frozen=True, slots=True)
class Query:
    by: tuple[str, ...] = ("tenant",)
    since: date | None = None
    until: date | None = None
    tenant: str | None = None
    format: str = "json"

    @classmethod
    def parse(
        cls, by: str | None, since: str | None, until: str | None, tenant: str | None, format: str | None
    ) -> Query:
        names = tuple(n.strip().replace("-", "_") for n in (by or "tenant").split(",") if n.strip())
        names = tuple("key_id" if n == "key" else n for n in names)
        for name in names:
            if name not in DIMENSIONS:
                raise QueryError(f"cannot group by {name!r}; by one or more of: {', '.join(DIMENSIONS)}")
        fmt = format or "json"
        if fmt not in ("json", "csv", "table"):
            raise QueryError(f"unknown format {fmt!r}; json, csv or table")
        return cls(names, parse_day(since, "since"), parse_day(until, "until"), tenant or None, fmt)

    def run(self, db: UsageDb) -> list[dict[str, Any]]:
        by = DIMENSIONS if self.format == "csv" else self.by
        first = (self.since - EPOCH).days if self.since else None
        last = (self.until - EPOCH).days if self.until else None
        return db.totals(by, first, last, self.tenant)


def parse_day(value: str | None, name: str) -> date | None:
    """A --since/--until day (YYYY-MM-DD), or None; a QueryError naming the option."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}: a date as YYYY-MM-DD, not {value!r}") from None


def readable(rows: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """Rows with the day as a date and the cost as a decimal string."""
    out = []
    for row in rows:
        row = dict(row)
        if "day" in row:
            row["day"] = (EPOCH + timedelta(days=row["day"])).isoformat()
        row["cost"] = f"{Decimal(row.pop('cost_micros')).scaleb(-6):f}"
        row["currency"] = currency
        out.append(row)
    return out


def render(query: Query, rows: list[dict[str, Any]], currency: str) -> str:
    if query.format == "csv":
        return focus_csv(rows, currency)
    nice = readable(rows, currency)
    if query.format == "json":
        import json

        return json.dumps({"by": list(query.by), "currency": currency, "rows": nice}, indent=1) + "\n"
    columns = [*query.by, "requests", "refused", "input_tokens", "output_tokens", "cost"]
    cells = [[str(r.get(c, "")) or "-" for c in columns] for r in nice]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    if not cells:
        lines.append("(no usage recorded in this period)")
    return "\n".join(lines) + f"\n(costs in {currency})\n"
