"""The cost case (`souverain usage costs`, `GET /admin/usage/costs`): the self-hosted cost
model against figures computed by hand, the comparison with API routes, break-even and
utilisation, bad input answered clearly, throughput measured from a real ledger, and the
HTML report checked in a real browser (Debian's headless Chromium through selenium)."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from conftest import Server
from ledger_fixtures import unavailable
from polling import until
from test_usage import ledger_entries, post
from upstreams import Upstream, assistant_config

from souverain.config import parse_config
from souverain.errors import ConfigError
from souverain.usage.config import SelfHosted, UsageConfig
from souverain.usage.costs import CostQuery, measured_throughput, render
from souverain.usage.prices import Catalogue, Tokens
from souverain.usage.report import QueryError
from souverain.usage.store import Row, UsageDb

# The deployment, month by month (730 h), by hand:
#   hardware   (4 × 30,000 + 24,000) / (4 years × 12)          = 3,000.00
#   power      2,000 W × PUE 1.5 / 1000 × 730 h = 2,190 kWh × 0.25 =  547.50
#   hosting                                                    =  452.50
#   operations 0.25 FTE × 96,000 / 12                          = 2,000.00
#   total                                                      = 6,000.00 a month
#   capacity   1,000 tokens/s × 730 h × 3,600 s = 2,628,000,000 tokens a month
USAGE = """
  currency: EUR
  self_hosted:
    - route: onprem
      gpus: 4
      gpu_price: 30000
      server_price: 24000
      amortisation_years: 4
      watts: 2000
      pue: 1.5
      kwh_price: 0.25
      hosting_per_month: 452.50
      operations_fte: 0.25
      operations_cost_per_year: 96000
      tokens_per_second: 1000
  prices:
    - {route: mistral-api, input_per_million: 1.50, output_per_million: 7.50}
    - {route: cheap-api, input_per_million: 0.10, output_per_million: 0.30}
"""
MODELS = """
models:
  - {name: medium-vllm, route: onprem, engine: openai_http, base_url: "http://127.0.0.1:9/v1"}
  - {name: medium-api, route: mistral-api, engine: openai_http, base_url: "http://127.0.0.1:9/v1"}
  - {name: small-api, route: cheap-api, engine: openai_http, base_url: "http://127.0.0.1:9/v1"}
air_gap: {enabled: false}
"""
DAY = (date(2026, 11, 1) - date(1970, 1, 1)).days  # the period: 2026-11-01 to 2026-11-10


def usage(text: str = USAGE) -> UsageConfig:
    return parse_config(f"usage:\n{text}\n{MODELS}", "costs.yaml", {}).usage


def row(idx: int, day: int, route: str, model: str, inp: int, out: int, status: int = 200) -> Row:
    return Row(idx, day, "acme", "k1", "", model, route, "public", status, inp, out, 0, 0, 0)


@pytest.fixture
def db(tmp_path: Path) -> UsageDb:
    """Usage rows written through the store: 8 M tokens on onprem in the period (6 M in,
    2 M out, over two models and three days), and traffic that must not count."""
    db = UsageDb.sqlite(tmp_path)
    db.write(
        [
            row(1, DAY, "onprem", "medium", 4_000_000, 1_000_000),
            row(2, DAY + 4, "onprem", "medium", 1_500_000, 500_000),
            row(3, DAY + 9, "onprem", "small", 500_000, 500_000),
            row(4, DAY + 9, "onprem", "small", 0, 0, status=429),  # refused: no tokens, not a request served
            row(5, DAY + 10, "onprem", "medium", 9_000_000, 9_000_000),  # the day after the period
            row(6, DAY - 1, "onprem", "medium", 9_000_000, 9_000_000),  # the day before
            row(7, DAY + 2, "mistral-api", "medium", 7_000_000, 7_000_000),  # another route
        ]
    )
    return db


def test_the_cost_model_gives_the_monthly_cost_and_the_per_hour_price() -> None:
    model = usage().self_hosted[0]
    parts = {k: v.quantize(Decimal("0.01")) for k, v in model.monthly().items()}
    assert parts == {
        "hardware": Decimal("3000.00"),
        "power": Decimal("547.50"),
        "hosting": Decimal("452.50"),
        "operations": Decimal("2000.00"),
    }
    assert model.per_month() == Decimal("6000")
    # The route's requests are charged from the model: per_hour = 6,000 / 730; a request
    # of 73 s on one slot: 6,000 / 730 × 73 / 3,600 = 600 / 3,600 = 0.1666…
    catalogue = Catalogue(usage())
    assert catalogue.cost("onprem", "medium", "", Tokens(100, 100), 73.0) == Decimal("0.166667")
    # Rented: 4 GPUs × 2.50 an hour × 730 h = 7,300 a month, nothing else given.
    rented = SelfHosted(route="onprem", rent_per_gpu_hour=Decimal("2.50"), watts=0)
    assert rented.per_month() == Decimal("7300")


def test_costs_break_even_and_sensitivity_match_hand_computed_figures(db: UsageDb) -> None:
    query = CostQuery.parse("2026-11-01", "2026-11-10", format="json")
    data = json.loads(render(query.run(usage(), db), "json"))
    assert data["days"] == 10
    (onprem,) = data["self_hosted"]
    assert onprem["monthly_cost"]["total"] == "6000.00"
    # 10 days = 240 h of a 730 h month: 6,000 × 240 / 730 = 1,972.6027…
    assert onprem["period_cost"] == "1972.60"
    # 4 + 1.5 + 0.5 = 6 M input, 1 + 0.5 + 0.5 = 2 M output; the refusal served nothing.
    assert onprem["tokens"] == {"input": 6_000_000, "output": 2_000_000, "cached": 0, "total": 8_000_000}
    assert onprem["requests"] == 3
    # 1,972.6027 / 8 M tokens = 246.5753 a million
    assert onprem["cost_per_million"] == "246.5753"
    # 8 M tokens over what 1,000 tokens/s serves in 10 days (864 M): 0.009259…
    assert onprem["utilisation"] == "0.0093"
    assert onprem["capacity_tokens_per_month"] == 2_628_000_000
    # 8 M tokens in 240 h, at 730 h a month: 24,333,333.3
    assert onprem["tokens_per_month"] == 24_333_333
    # 6,000 / (2,628 M × u) × 1 M: 100% 2.2831, 75% 3.0441, 50% 4.5662, 25% 9.1324, 10% 22.8311
    assert [(s["utilisation"], s["cost_per_million"]) for s in onprem["sensitivity"]] == [
        ("0.10", "22.8311"),
        ("0.25", "9.1324"),
        ("0.50", "4.5662"),
        ("0.75", "3.0441"),
        ("1", "2.2831"),
    ]
    against = {a["route"]: a for a in onprem["against"]}
    assert set(against) == {"mistral-api", "cheap-api"}
    # mistral-api: 6 M × 1.50 + 2 M × 7.50 = 9 + 15 = 24.00, i.e. 3.00 a million;
    # break-even: 6,000 / 3.00 = 2,000 M tokens a month (under the 2,628 M capacity).
    assert against["mistral-api"]["cost"] == "24.00"
    assert against["mistral-api"]["per_million"] == "3.0000"
    assert against["mistral-api"]["saving"] == "-1948.60"  # 24.00 − 1,972.60
    assert against["mistral-api"]["break_even_tokens_per_month"] == 2_000_000_000
    # cheap-api: 6 M × 0.10 + 2 M × 0.30 = 1.20, 0.15 a million; break-even would be
    # 6,000 / 0.15 = 40,000 M a month, past the capacity: at full use self-hosting costs
    # 2.2831 a million, more than 0.15. Never.
    assert against["cheap-api"]["cost"] == "1.20"
    assert against["cheap-api"]["break_even_tokens_per_month"] is None
    assert against["cheap-api"]["no_break_even"].startswith("never: at full use self-hosting costs 2.2831")
    assert data["notes"] == []
    text = render(query.run(usage(), db), "table")
    assert "break-even tokens/month" in text and "2000000000" in text and "1972.60" in text


def test_a_route_priced_per_hour_is_a_self_hosted_route_too(db: UsageDb) -> None:
    # An old configuration: 12 an hour × 730 h = 8,760 a month; no throughput known.
    config = usage(
        """
  prices:
    - {route: onprem, per_hour: 12}
    - {route: mistral-api, input_per_million: 1.50, output_per_million: 7.50}
"""
    )
    query = CostQuery.parse("2026-11-01", "2026-11-10", against="mistral-api", format="json")
    (onprem,) = query.run(config, db).to_json()["self_hosted"]
    assert onprem["monthly_cost"] == {"per_hour": "8760.00", "total": "8760.00"}
    # 8,760 / 3.00 a million = 2,920 M tokens a month; capacity unknown, so not capped
    assert onprem["against"][0]["break_even_tokens_per_month"] == 2_920_000_000
    assert onprem["sensitivity"] == [] and onprem["utilisation"] is None


def test_a_period_with_no_traffic_says_no_data(db: UsageDb) -> None:
    query = CostQuery.parse("2025-01-01", "2025-01-31", format="json")
    result = query.run(usage(), db)
    (onprem,) = result.to_json()["self_hosted"]
    assert onprem["tokens"]["total"] == 0 and onprem["cost_per_million"] is None
    # 31 days = 744 h: 6,000 × 744 / 730 = 6,115.07 (the deployment costs its money idle)
    assert onprem["period_cost"] == "6115.07"
    assert all(a["cost"] is None and a["no_break_even"] == "no traffic in the period" for a in onprem["against"])
    assert any("no traffic from 2025-01-01 to 2025-01-31" in n for n in result.notes)
    assert "no data" in render(result, "html")
    assert "note: onprem: no traffic" in render(result, "table")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"against": "nope"}, "route 'nope' has no per-token price in usage.prices"),
        ({"route": "mistral-api"}, "route 'mistral-api' is not a self-hosted route"),
        ({"since": "2026-13-01"}, "since: a date as YYYY-MM-DD, not '2026-13-01'"),
        ({"since": "2026-11-10", "until": "2026-11-01"}, "since (2026-11-10) is after until (2026-11-01)"),
        ({"format": "pdf"}, "unknown format 'pdf'"),
    ],
)
def test_bad_questions_get_a_clear_error(args: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CostQuery.parse(
            args.get("since"), args.get("until"), args.get("route"), args.get("against"), args.get("format")
        ).routes(usage())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            USAGE.replace("route: onprem", "route: onprm"),
            "usage.self_hosted[0].route: no model is on a route named 'onprm'",
        ),
        (
            USAGE.replace("kwh_price: 0.25", "kwh_price: -0.25"),
            "kwh_price: a price or budget is a number of at least 0",
        ),
        (USAGE.replace("pue: 1.5", "pue: 0.5"), "usage.self_hosted[0].pue"),
        (USAGE.replace("gpu_price: 30000", "rent_per_gpu_hour: 2"), "bought (gpu_price, server_price) or rented"),
        (
            USAGE.replace("      gpu_price: 30000\n      server_price: 24000\n", ""),
            "say what the deployment's GPUs cost",
        ),
        (USAGE + "    - {route: onprem, per_hour: 12}\n", "route 'onprem' has a per_hour price and a self_hosted"),
    ],
)
def test_bad_cost_models_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        usage(text)
    assert message in str(err.value)
    assert str(err.value).startswith("costs.yaml:")


def test_no_api_route_to_compare_with_is_said(db: UsageDb) -> None:
    config = usage(USAGE.split("  prices:")[0])
    result = CostQuery.parse("2026-11-01", "2026-11-10").run(config, db)
    assert result.routes[0].against == []
    assert result.notes == ["no API route priced per token in usage.prices: nothing to compare with"]


def test_measured_throughput_is_tokens_over_busy_time() -> None:
    # [6, 10] and [8, 12] overlap: busy 6 s; [28, 30]: 2 s more; 1,000 tokens / 8 s = 125
    assert measured_throughput([(10.0, 4000, 400), (12.0, 4000, 400), (30.0, 2000, 200)]) == 125.0
    assert measured_throughput([(10.0, 0, 400)]) is None
    assert measured_throughput([]) is None


# -- through the gateway: the CLI, the admin API, a real ledger -----------------------
def test_cli_and_admin_api_with_throughput_measured_from_the_ledger(tmp_path: Path) -> None:
    upstream = Upstream("upstream")  # answers 3 prompt and 2 completion tokens
    usage_text = """
  currency: EUR
  self_hosted:
    - {route: undeclared, gpus: 4, gpu_price: 30000, amortisation_years: 4, watts: 0}
  prices:
    - {route: mistral-api, input_per_million: 1.50, output_per_million: 7.50}
"""
    server = Server(tmp_path, assistant_config(upstream, rest=f"usage:\n{usage_text}"))
    try:
        for _ in range(3):
            assert post(server, server.key).status_code == 200
        cfg = str(server.config_path)

        def costs(*args: str) -> dict:
            done = server.cli("usage", "costs", "--config", cfg, "--format", "json", *args)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        # the rows are written off the response's path: wait for the three
        until(lambda: costs()["self_hosted"][0]["tokens"]["total"] == 15, 30, "usage rows written", every_s=0.2)
        data = costs()
        (route,) = data["self_hosted"]
        # 4 × 30,000 / 48 months = 2,500 a month
        assert route["monthly_cost"]["total"] == "2500.00"
        assert route["tokens"] == {"input": 9, "output": 6, "cached": 0, "total": 15}
        # 9 × 1.50 / 1 M + 6 × 7.50 / 1 M = 0.0000585 (0.00 at the cent) over 15 tokens:
        # 3.90 a million
        assert route["against"][0]["cost"] == "0.00"
        assert route["against"][0]["per_million"] == "3.9000"
        assert route["throughput_source"] == "measured"
        # the same figure from the ledger's own entries, by the documented rule
        entries = [e for _, e in ledger_entries(server.state) if e["route"] == "undeclared"]
        expected = measured_throughput(
            (
                datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp(),
                e["latency_ms"],
                e["prompt_tokens"] + e["completion_tokens"],
            )
            for e in entries
        )
        assert expected is not None and route["tokens_per_second"] == round(expected, 3)

        # --config before the command is the same file, not the defaults
        before = server.cli("usage", "--config", cfg, "costs", "--format", "json")
        assert before.returncode == 0 and json.loads(before.stdout)["self_hosted"][0]["tokens"]["total"] == 15

        bad = server.cli("usage", "costs", "--config", cfg, "--against", "nope")
        assert bad.returncode == 2 and "route 'nope' has no per-token price" in bad.stderr
        assert "Traceback" not in bad.stderr

        out = tmp_path / "report.html"
        done = server.cli("usage", "costs", "--config", cfg, "--format", "html", "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert "<svg" in out.read_text() and "http://" not in out.read_text().replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )

        url = f"{server.url}/admin/usage/costs"
        user = server.cli("keys", "create", "--name", "user").stdout.strip()
        assert httpx.get(url, headers=server.headers(user), timeout=30).status_code == 403  # not an admin key
        auth = server.headers()  # the first key: admin scope
        answer = httpx.get(url, headers=auth, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["self_hosted"][0]["monthly_cost"] == route["monthly_cost"]
        page = httpx.get(url, params={"format": "html"}, headers=auth, timeout=30)
        assert page.headers["content-type"].startswith("text/html") and "<svg" in page.text
        wrong = httpx.get(url, params={"against": "nope"}, headers=auth, timeout=30)
        assert wrong.status_code == 400
        assert "route 'nope' has no per-token price" in wrong.json()["error"]["message"]
    finally:
        server.stop()
        upstream.stop()


# -- the HTML report in a real browser ---------------------------------------------------
def test_the_html_report_escapes_names() -> None:
    from souverain.usage.costs_html import html

    data = {
        "currency": "EUR",
        "since": "2026-11-01",
        "until": "2026-11-10",
        "days": 10,
        "hours_per_month": 730,
        "self_hosted": [],
        "notes": ['<script>alert("x")</script>'],
    }
    page = html(data)
    assert "<script>" not in page and "&lt;script&gt;" in page


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        unavailable(
            f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,2000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is Debian's: selenium-manager is never asked to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_report_reads_right_in_a_real_browser(db: UsageDb, tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    config = usage()
    query = CostQuery.parse("2026-11-01", "2026-11-10", format="html")
    page = tmp_path / "report.html"
    page.write_text(render(query.run(config, db), "html"), encoding="utf-8")
    browser.get(page.as_uri())

    assert "The cost case, 2026-11-01 to 2026-11-10" in browser.title
    svg = browser.find_element(By.CSS_SELECTOR, "svg.cost-chart[data-route='onprem']")
    box = svg.rect
    assert box["width"] > 0 and box["height"] > 0

    def sized(selector: str):
        found = svg.find_elements(By.CSS_SELECTOR, selector)
        assert found, selector
        for element in found:
            r = element.rect
            assert r["width"] > 0 or r["height"] > 0, (selector, r)
        return found

    sized("polyline.self-hosted")
    lines = {e.get_attribute("data-route"): e for e in sized("line.api")}
    assert set(lines) == {"mistral-api", "cheap-api"}
    (marker,) = sized("circle.break-even")  # cheap-api never breaks even: no marker for it
    assert marker.get_attribute("data-route") == "mistral-api"

    # Where a reader sees the marker: its centre on the x axis, in screen pixels, against
    # the hand-computed 2,000 M tokens a month on the axis the chart drew (0 to x-max).
    x_max = float(svg.get_attribute("data-x-max"))
    left = float(svg.get_attribute("data-plot-left"))
    width = float(svg.get_attribute("data-plot-width"))
    scale = box["width"] / 720  # the viewBox is 720 wide
    expected_x = box["x"] + (left + 2_000_000_000 / x_max * width) * scale
    centre = marker.rect["x"] + marker.rect["width"] / 2
    assert abs(centre - expected_x) < 2, (centre, expected_x)
    # and at the height of the fixed cost, 6,000 a month
    y_max = float(svg.get_attribute("data-y-max"))
    top = float(svg.get_attribute("data-plot-top"))
    height = float(svg.get_attribute("data-plot-height"))
    expected_y = box["y"] + (top + height - 6000 / y_max * height) * scale
    assert abs(marker.rect["y"] + marker.rect["height"] / 2 - expected_y) < 2

    (volume,) = sized("line.volume")
    assert volume.get_attribute("data-tokens") == "24333333"
    labels = {e.text for e in svg.find_elements(By.CSS_SELECTOR, "text")}
    assert "tokens a month" in labels and "EUR a month" in labels
    assert any(t.startswith("break-even 2B") for t in labels)
    assert any(t.startswith("this period") for t in labels)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "2,000,000,000" in body and "never: at full use" in body
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
