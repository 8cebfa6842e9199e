"""Say it plainly: every sentence of a report agrees with the tables beside it, and no
route shows a level that a failed criterion on the same page contradicts.

Checked on the worked example, every catalogue template, the tricky routes and a few
hundred random pipes, by reading the rendered Markdown back: the sentences are compared
with the residency table, the pipe table and the summary table, not with the code's own
intermediate values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_pipes_properties import generate
from test_pipes_tricky import MIXED, VLLM, cvm, flow_route, pipes

from souverain.cli.main import main
from souverain.sovereignty import analyse, load_pipes, parse_pipes, templates_as_routes
from souverain.sovereignty.levels import Level
from souverain.sovereignty.report import summary, to_markdown
from souverain.sovereignty.report_html import to_html

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pipes" / "pipes.yaml"
US_LOGS = "[{name: error reports, enabled: true, destination: logco, countries: [US], content: content}]"


def cases():
    yield "example", load_pipes(EXAMPLE)
    yield "catalogue", templates_as_routes(load_pipes(None))
    for name, text in (
        ("mixed", MIXED),
        ("flow", flow_route(US_LOGS)),
        ("cvm", pipes(VLLM, cvm("cloud-eu"), routes="  r: {hops: [gw, vllm]}\n")),
    ):
        yield name, parse_pipes(text, catalogue=False)
    for seed in range(0, 300, 3):
        yield f"seed {seed}", generate(seed)[0]


CASES = list(cases())


def section(md: str, route: str) -> str:
    start = md.index(f"\n## {route}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end != -1 else len(md)]


def cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def table(text: str, heading: str) -> list[list[str]]:
    """The rows of the table under a heading."""
    block = text[text.index(heading) :].split("\n\n")[1]
    return [cells(row) for row in block.splitlines()[2:]]


@pytest.mark.parametrize("name, pipes_", CASES, ids=[c[0] for c in CASES])
def test_no_summary_sentence_contradicts_its_tables(name: str, pipes_) -> None:
    analysis = analyse(pipes_)
    md = to_markdown(analysis, pipes_)
    for route, r in analysis.routes.items():
        text = " ".join(summary(r, pipes_))
        own = section(md, route)
        assert text in own  # the report prints these very sentences
        residency = {row[0]: row for row in table(own, "### Residency")}
        reach = [row[-1] for row in table(own, "### The pipe")]
        if "Nothing leaves the EEA" in text:
            assert all(row[2] == "yes" for row in residency.values()), (route, residency)
        for facet, where in (
            re.findall(r"(\w+) to ([A-Z, ]+?)(?:;|\.)", text.split("Data leaves the EEA: ", 1)[-1])
            if "Data leaves" in text
            else ()
        ):
            assert residency[facet][2] == "no" and all(c in residency[facet][1] for c in where.split(", ")), (
                route,
                facet,
                residency[facet],
            )
        unknown = re.search(r"Not known to stay in the EEA: ([a-z, ]+)\.", text)
        for facet in unknown.group(1).split(", ") if unknown else ():
            assert residency[facet][2] == "unknown", (route, facet)
        assert ("Nothing leaves the EEA" in text) == all(row[2] == "yes" for row in residency.values())
        summary_row = next(cells(line) for line in md.split("\n## ")[0].splitlines() if line.startswith(f"| [{route}]"))
        said = {
            "no": "No non-EU law can compel plaintext" in text,
            "residual": "only through a contested, residual reach" in text,
            "yes": "A non-EU law can compel plaintext:" in text,
            "unknown": "Whether a non-EU law can compel plaintext is unknown" in text,
        }
        assert [k for k, v in said.items() if v] == [summary_row[2].split(" ")[0].rstrip(":")], (
            route,
            said,
            summary_row[2],
        )
        if "No non-EU law can compel plaintext" in text:
            assert all(cell == "none" for cell in reach) and summary_row[2] == "no", (route, reach)
        if "only through a contested, residual reach" in text:
            assert summary_row[2].startswith("residual") and not any(
                "established" in cell and "at worst" not in cell for cell in reach
            )
            assert any("residual" in cell for cell in reach)
        if "A non-EU law can compel plaintext:" in text:
            assert summary_row[2].startswith("yes") and any("(established)" in cell for cell in reach), (route, reach)


@pytest.mark.parametrize("name, pipes_", CASES, ids=[c[0] for c in CASES])
def test_no_level_stands_beside_a_criterion_that_contradicts_it(name: str, pipes_) -> None:
    analysis = analyse(pipes_)
    for route, r in analysis.routes.items():
        for c in r.criteria:
            needed = pipes_.rules.criteria[c.id].required_from
            if needed and c.verdict not in ("pass", "not_applicable"):
                assert r.profile.level < Level.parse(needed), (route, c.id, c.verdict, r.profile.level_name)


def test_check_html_and_json_say_residual_with_the_reason(capsys, tmp_path) -> None:
    # Route (e): OVHcloud's non-EU subsidiaries give a contested reach (R v OVH, 2025).
    assert main(["pipes", "check", str(EXAMPLE), "--route", "e-ovh-snc"]) == 0
    out = capsys.readouterr().out
    assert "non-EU access: residual" in out and "residual: " in out and "contested" in out
    assert main(["pipes", "check", str(EXAMPLE), "--route", "e-ovh-snc", "--json"]) == 0
    assert '"non_eu_access": "residual"' in capsys.readouterr().out
    pipes_ = load_pipes(EXAMPLE)
    html = to_html(analyse(pipes_, routes=["e-ovh-snc"]), pipes_)
    assert "<span class='pill partial'>residual (contested)</span>" in html
