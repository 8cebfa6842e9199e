"""Gateway processes: `souverain serve --workers N` for N = 1 and 2, against the mock
upstream, closed loop at concurrency 1 and 16 (bench/load.py), two rounds each, the
load generator and the mock on the same machine. The measurement behind the default.

    .venv/bin/python bench/workers.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

LOAD = str(Path(__file__).resolve().parent / "load.py")


def main() -> int:
    out: dict[str, list[dict]] = {}
    with harness.mock_upstream() as upstream:
        for workers in (1, 2):
            for _ in range(2):
                command = [harness.SOUVERAIN, "serve", "--workers", str(workers)]
                with harness.gateway(harness.mock_config(upstream), command) as gw:
                    for concurrency in (1, 16):
                        run = subprocess.run(
                            [
                                sys.executable,
                                LOAD,
                                "--url",
                                gw.url,
                                "--concurrency",
                                str(concurrency),
                                "--requests",
                                "1500",
                                "--key",
                                gw.key,
                                "--time-limit",
                                "40",
                            ],
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        result = json.loads(run.stdout.strip().splitlines()[-1])
                        out.setdefault(f"workers={workers} c={concurrency}", []).append(
                            {k: result[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}
                        )
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
