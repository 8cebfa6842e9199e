"""Accounting, budgets and rate limits (docs/usage.md).

- `config.py`: the `usage:` settings (currency, price catalogue, cost centres, budgets);
- `prices.py`: what a request costs, and the worst case a budget reserves;
- `store.py`: usage rows and their daily roll-ups (SQLite or PostgreSQL), the queries
  behind `souverain usage`, the FinOps FOCUS export;
- `budgets.py`: money budgets and request/token limits, reserved before the call and
  settled after, atomically across replicas (PostgreSQL, SQLite, or Redis);
- `costs.py`, `costs_html.py`: the cost case (self-hosted against API routes, break-even,
  utilisation) and its self-contained HTML page;
- `accounting.py`: what the spine holds: admission, pricing, and the writer that gets
  every row into the store off the response's path, filled from the ledger after a crash.
"""
