"""`souverain pipes check|report|diff|dora`, run as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from souverain.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pipes" / "pipes.yaml"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_exits_1_when_a_route_breaks_its_requirements(capsys) -> None:
    code, out, _ = run(["pipes", "check", str(EXAMPLE)], capsys)
    assert code == 1
    assert re.search(r"a-onprem\s+in_house \(4\)\s+non-EU access: no\s+ok", out)
    assert re.search(r"b-mistral-direct\s+none \(0\).*breaks its requirements", out)
    assert "below the required eu_resident" in out


def test_check_exits_0_when_requirements_are_met(tmp_path: Path, capsys) -> None:
    relaxed = tmp_path / "pipes.yaml"
    relaxed.write_text(EXAMPLE.read_text().replace("  min_level: eu_resident ", "  min_level: none "))
    code, out, _ = run(["pipes", "check", str(relaxed)], capsys)
    assert code == 0, out
    code, out, _ = run(["pipes", "check", str(relaxed), "--route", "e-ovh-snc", "--json"], capsys)
    profiles = json.loads(out)
    assert code == 0 and list(profiles) == ["e-ovh-snc"]
    assert profiles["e-ovh-snc"]["level"] == 2 and profiles["e-ovh-snc"]["level_name"] == "eu_controlled"
    assert len(profiles["e-ovh-snc"]["digest"]) == 64


def test_check_on_an_invalid_file_exits_2_with_file_line_key(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "pipes.yaml"
    bad.write_text("hops:\n  x:\n    role: compute\n    operator: nobody\n")
    code, _, err = run(["pipes", "check", str(bad)], capsys)
    assert code == 2
    assert f"{bad}:4: hops.x.operator: no entity 'nobody'" in err


def test_check_finds_pipes_yaml_or_says_how(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOUVERAIN_PIPES", raising=False)
    code, _, err = run(["pipes", "check"], capsys)
    assert code == 2 and "no pipes file" in err
    (tmp_path / "pipes.yaml").write_text(EXAMPLE.read_text())
    code, out, _ = run(["pipes", "check"], capsys)
    assert code == 1 and out.startswith("pipes.yaml: 5 route(s)")


def test_report_formats(tmp_path: Path, capsys) -> None:
    code, out, _ = run(["pipes", "report", str(EXAMPLE), "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["schema"] == "souverain.pipes.analysis/v1"
    assert data["routes"]["c-azure-eu"]["profile"]["non_eu_access"] == "yes"
    assert "ev-azure-deployment-types" in data["evidence"]
    code, out, _ = run(["pipes", "report", str(EXAMPLE)], capsys)
    assert "| [e-ovh-snc](#e-ovh-snc) | eu_controlled (2) |" in out
    for question in ("Who hosts the model?", "Who holds the keys?", "Which law governs each provider?", "Where are logs stored?",
                     "Who can reach production data?", "Which subprocessors?", "How long is data kept?"):  # fmt: skip
        assert out.count(f"**{question}**") == 5
    page = tmp_path / "r.html"
    code, _, _ = run(["pipes", "report", str(EXAMPLE), "-f", "html", "-o", str(page)], capsys)
    html = page.read_text()
    assert code == 0 and html.startswith("<!doctype html>") and html.count("<svg") == 5
    # Self-contained: nothing to fetch.
    assert not re.search(r"""(src|href)=['"]https?:""", html) and "<script" not in html and "@import" not in html
    assert "CLOUD Act" in html and "CA order" in html


def test_report_on_the_catalogue(capsys) -> None:
    code, out, _ = run(["pipes", "report", "--catalogue", "--no-catalogue", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["routes"] == {}
    code, out, _ = run(["pipes", "check", "--catalogue"], capsys)
    assert code == 0 and "azure-foundry-mistral-global" in out


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_diff_exits_1_when_a_personal_data_route_loses_sovereignty(tmp_path: Path, capsys) -> None:
    old = write(tmp_path, "old.yaml", EXAMPLE.read_text())
    new = write(
        tmp_path,
        "new.yaml",
        EXAMPLE.read_text().replace("template: azure-foundry-mistral-eu", "template: azure-foundry-mistral-global"),
    )
    code, out, _ = run(["pipes", "diff", str(old), str(new)], capsys)
    assert code == 1
    assert "c-azure-eu: changed — LOST SOVEREIGNTY (personal data: yes)" in out
    assert "▼ level: eu_resident (1) → none (0)" in out
    assert "▼ residency:processing" in out
    code, out, _ = run(["pipes", "diff", str(old), str(new), "--format", "json"], capsys)
    routes = {r["route"]: r for r in json.loads(out)["routes"]}
    assert routes["c-azure-eu"]["lost_sovereignty"] and routes["a-onprem"]["status"] == "unchanged"


def test_diff_exits_0_for_improvements_and_non_personal_routes(tmp_path: Path, capsys) -> None:
    old = write(tmp_path, "old.yaml", EXAMPLE.read_text())
    same = write(tmp_path, "same.yaml", EXAMPLE.read_text())
    code, out, _ = run(["pipes", "diff", str(old), str(same)], capsys)
    assert code == 0 and "No route changed." in out
    # The reverse change is an improvement.
    worse = write(
        tmp_path,
        "worse.yaml",
        EXAMPLE.read_text().replace("template: azure-foundry-mistral-eu", "template: azure-foundry-mistral-global"),
    )
    code, out, _ = run(["pipes", "diff", str(worse), str(old), "--format", "md"], capsys)
    assert code == 0 and "### c-azure-eu: changed" in out
    # A route that carries no personal data may lose sovereignty without blocking the change.
    text = EXAMPLE.read_text().replace("template: azure-foundry-mistral-eu", "template: azure-foundry-mistral-global")
    text = text.replace(
        "    purpose: *triage\n    regimes: {gdpr: true, dora: true, ai_act: true}\n\n  d-bedrock",
        "    purpose: {name: Public FAQ drafting, personal_data: false}\n\n  d-bedrock",
    )
    old_public = write(tmp_path, "old-public.yaml", EXAMPLE.read_text().replace(
        "    purpose: *triage\n    regimes: {gdpr: true, dora: true, ai_act: true}\n\n  d-bedrock", "    purpose: {name: Public FAQ drafting, personal_data: false}\n\n  d-bedrock"))  # fmt: skip
    new_public = write(tmp_path, "new-public.yaml", text)
    code, out, _ = run(["pipes", "diff", str(old_public), str(new_public)], capsys)
    assert code == 0 and "LOST SOVEREIGNTY (personal data: no)" in out
    # A new file in a first pull request: everything is added.
    code, out, _ = run(["pipes", "diff", "/dev/null", str(old)], capsys)
    assert code == 0 and "a-onprem: added" in out


def test_dora_register_and_art30(tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "register"
    code, _, err = run(["pipes", "dora", str(EXAMPLE), "--out", str(out_dir)], capsys)
    assert code == 0 and "taxonomy its-2024-2956" in err
    assert "gap: entity microsoft-ireland: no LEI" in err  # never invented
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "art30.json",
        "art30.md",
        "b_02.02.csv",
        "b_05.01.csv",
        "b_05.02.csv",
    ]
    providers = list(csv.reader(io.StringIO((out_dir / "b_05.01.csv").read_text())))
    assert providers[0] == [f"c{n:04d}" for n in range(10, 130, 10)]
    names = {row[4]: row for row in providers[1:]}
    assert names["Microsoft Ireland Operations Limited"][7] == "eba_GA:IE"
    assert names["Mistral AI SAS"][:2] == ["RCS Paris 952 418 325", "eba_qCO:qx2001"]
    chain = list(csv.DictReader(io.StringIO((out_dir / "b_05.02.csv").read_text())))
    assert {row["c0050"] for row in chain} == {"1"}  # the unverified rank-2 Mistral subprocessors are left out
    specific = list(csv.DictReader(io.StringIO((out_dir / "b_02.02.csv").read_text())))
    bedrock = next(r for r in specific if r["c0030"] == "(aws-emea-sarl)")
    assert (bedrock["c0020"], bedrock["c0050"], bedrock["c0140"], bedrock["c0160"]) == (
        "969500EXAMPLEBANK039",
        "F7",
        "eba_BT:x29",
        "eba_GA:DE",
    )
    records = json.loads((out_dir / "art30.json").read_text())
    assert [r["route"] for r in records] == ["a-onprem", "b-mistral-direct", "c-azure-eu", "d-bedrock-fra", "e-ovh-snc"]
    azure = next(r for r in records if r["route"] == "c-azure-eu")
    assert azure["controller"]["lei"] == "969500EXAMPLEBANK039"
    assert [x["name"] for x in azure["recipients"]] == ["Microsoft Ireland"]


def test_dora_taxonomies_are_pinned_by_name(capsys) -> None:
    code, out, _ = run(["pipes", "dora", "--list-taxonomies"], capsys)
    assert code == 0 and "its-2024-2956 (default)" in out and "eba-xls-master-2025" in out
    code, out, _ = run(
        ["pipes", "dora", str(EXAMPLE), "--taxonomy", "eba-xls-master-2025", "--table", "b_05.01"], capsys
    )
    header = out.splitlines()[0].split(",")
    assert header == [f"c{n:04d}" for n in range(10, 100, 10)]
    code, _, err = run(["pipes", "dora", str(EXAMPLE), "--taxonomy", "nope", "--table", "b_05.01"], capsys)
    assert code == 2 and "unknown taxonomy 'nope'" in err


def test_the_installed_command_runs_the_example() -> None:
    """The README promise, end to end in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "souverain", "pipes", "report", "--format", "json", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["routes"]) == {
        "a-onprem",
        "b-mistral-direct",
        "c-azure-eu",
        "d-bedrock-fra",
        "e-ovh-snc",
    }


@pytest.mark.parametrize("cmd", ["check", "report", "diff", "dora"])
def test_help(cmd: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["pipes", cmd, "--help"])
    assert exit_.value.code == 0 and "usage: souverain pipes" in capsys.readouterr().out
