"""Per-tenant privacy settings through a real gateway.

One `souverain serve` reads a `privacy:` section whose tenants differ (a deny list, an
allow list, a lower or higher threshold, a disabled type, no dictionaries) and whose
default has an operator dictionary in a file next to the configuration file, not in the
gateway's working directory. Every request goes to an echoing upstream over an
undeclared route, which the strict policy lets carry public data only; personal and
confidential requests are pseudonymised to public instead. So each request shows what
the tenant's scanner found three ways: the `x-souverain-data-class` header, what the
upstream received (placeholders or the values), and the ledger entry's counts. Each
assertion has its twin for another tenant, so a gateway that ignored the tenant's
settings fails both ways.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SOUVERAIN, Server, http
from upstreams import Upstream

TENANTS = ("hr", "research", "eager", "lenient", "nodict")


def privacy_section(dictionary: str) -> str:
    return f"""
privacy:
  dictionaries:
    PERSON: {{file: {dictionary}}}
  tenants:
    hr:
      deny: [Apollo]
      classes: {{DENYLIST: personal}}
    research:
      allow: ["Marie Dupont"]
    eager:
      thresholds: {{PERSON: 0.4}}
    lenient:
      disabled: [EMAIL]
    nodict:
      dictionaries: {{}}
"""


def gateway_config(port: int) -> str:
    return f"""
routing:
  health_interval_s: 0
  policy:
    classes:
      confidential: {{min_level: eu_controlled, pseudonymise_to: public}}
      personal:
        {{min_level: sovereign, no_non_eu_access: true, residency: [processing, storage], pseudonymise_to: public}}
{privacy_section("lists/customers.txt")}
models:
  - name: echo
    engine: openai_http
    base_url: http://127.0.0.1:{port}/v1
"""


class Tenants:
    """The gateway, its upstream, and an inference key per tenant (`default` included)."""

    def __init__(self, server: Server, upstream: Upstream, config: Path) -> None:
        self.server, self.upstream, self.config = server, upstream, config
        self.keys = {"default": server.key}
        for tenant in TENANTS:
            created = server.cli("keys", "create", "--name", tenant, "--tenant", tenant)
            assert created.returncode == 0, created.stderr
            self.keys[tenant] = created.stdout.strip()
        auditor = server.cli("keys", "create", "--name", "auditor", "--scope", "auditor:all")
        assert auditor.returncode == 0, auditor.stderr
        self.auditor = auditor.stdout.strip()

    def ask(self, tenant: str, text: str) -> tuple[str, str, str, int]:
        """(class header, text the upstream received, answer, ledger index)."""
        before = len(self.upstream.received)
        body = {"model": "echo", "messages": [{"role": "user", "content": text}]}
        headers = self.server.headers(self.keys[tenant])
        r = http.post(f"{self.server.url}/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert len(self.upstream.received) == before + 1
        sent = json.loads(self.upstream.received[-1])["messages"][-1]["content"]
        answer = r.json()["choices"][0]["message"]["content"]
        return r.headers["x-souverain-data-class"], sent, answer, int(r.headers["x-souverain-ledger-index"])

    def found(self, index: int) -> dict[str, int]:
        """The types and counts the ledger entry at `index` records."""
        deadline = time.monotonic() + 10
        while True:
            r = http.get(
                f"{self.server.url}/ledger/entries",
                params={"start": index, "end": index + 1},
                headers=self.server.headers(self.auditor),
            )
            assert r.status_code == 200, r.text
            if r.json()["entries"] or time.monotonic() > deadline:
                return r.json()["entries"][0]["entry"].get("found", {})
            time.sleep(0.1)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    # The configuration lives in conf/, the gateway runs in run/: the dictionary file is
    # found only if it is read relative to the configuration file.
    root = tmp_path_factory.mktemp("tenants")
    (root / "conf" / "lists").mkdir(parents=True)
    (root / "conf" / "lists" / "customers.txt").write_text("# customers\nZyx Qwerty\n", encoding="utf-8")
    (root / "run").mkdir()
    upstream = Upstream("echo")
    upstream.echo = True
    config = root / "conf" / "souverain.yaml"
    config.write_text(gateway_config(upstream.port))
    server = Server(root / "run", None, env={"SOUVERAIN_CONFIG": str(config)})
    server.wait_ready()
    try:
        yield Tenants(server, upstream, config)
    finally:
        server.stop()
        upstream.stop()


def test_deny_list_word_is_personal_data_for_its_tenant_only(tenants: Tenants) -> None:
    text = "What is the status of Apollo?"
    data_class, sent, answer, _ = tenants.ask("hr", text)
    assert data_class == "personal"  # DENYLIST, classed personal for hr
    assert sent == "What is the status of [DENYLIST_1]?"
    assert answer == f"Noted: {text}"  # restored on the way back
    for other in ("default", "research"):
        data_class, sent, _, _ = tenants.ask(other, text)
        assert (data_class, sent) == ("public", text)


def test_allow_listed_name_is_not_flagged_for_its_tenant_only(tenants: Tenants) -> None:
    text = "Please ask Marie Dupont about it."
    data_class, sent, _, _ = tenants.ask("research", text)
    assert (data_class, sent) == ("public", text)
    for other in ("default", "hr"):
        data_class, sent, _, _ = tenants.ask(other, text)
        assert (data_class, sent) == ("personal", "Please ask [PERSON_1] about it.")


def test_threshold_and_disabled_type_change_the_class(tenants: Tenants) -> None:
    lone = "Ask Marie tomorrow."  # a lone first name scores 0.45: under 0.5, over 0.4
    assert tenants.ask("eager", lone)[:2] == ("personal", "Ask [PERSON_1] tomorrow.")
    assert tenants.ask("default", lone)[:2] == ("public", lone)
    email = "Write to marie.dubois@exemple.fr today."
    assert tenants.ask("lenient", email)[:2] == ("public", email)
    assert tenants.ask("default", email)[:2] == ("personal", "Write to [EMAIL_1] today.")


def test_dictionary_file_is_read_relative_to_the_config_file(tenants: Tenants) -> None:
    assert tenants.server.tmp != tenants.config.parent and not (tenants.server.tmp / "lists").exists()
    text = "Zyx Qwerty called about the invoice."  # in no name list, no trigger word
    for tenant in ("default", "hr"):  # hr inherits the default's dictionaries
        assert tenants.ask(tenant, text)[:2] == ("personal", "[PERSON_1] called about the invoice.")
    assert tenants.ask("nodict", text)[:2] == ("public", text)


def scan_cli(config: Path, tenant: str | None, body: dict, cwd: Path) -> dict:
    args = [*SOUVERAIN, "privacy", "scan", "--request", "--config", str(config)]
    if tenant is not None:
        args += ["--tenant", tenant]
    p = subprocess.run(args, input=json.dumps(body), capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_cli_with_config_and_tenant_finds_what_the_gateway_finds(tenants: Tenants, tmp_path: Path) -> None:
    text = (
        "Apollo: Marie Dupont (marie.dubois@exemple.fr) and Zyx Qwerty. "
        "Ask Marie tomorrow. IBAN FR7630006000011234567890189."
    )
    body = {"model": "echo", "messages": [{"role": "user", "content": text}]}
    seen = {}
    for tenant in ("default", *TENANTS):
        data_class, _, _, index = tenants.ask(tenant, text)
        cli = scan_cli(tenants.config, None if tenant == "default" else tenant, body, cwd=tmp_path)
        assert cli["summary"]["counts"] == tenants.found(index), tenant
        assert cli["summary"]["data_class"] == data_class, tenant
        seen[tenant] = cli["summary"]["counts"]
    # The settings differ, so the comparison above compared different findings.
    assert seen["hr"]["DENYLIST"] == 1 and "DENYLIST" not in seen["default"]
    assert seen["research"]["PERSON"] == seen["default"]["PERSON"] - 1
    assert seen["eager"]["PERSON"] == seen["default"]["PERSON"] + 1
    assert "EMAIL" not in seen["lenient"] and seen["default"]["EMAIL"] == 1
    assert seen["nodict"]["PERSON"] == seen["default"]["PERSON"] - 1
    # An unlisted tenant gets the default settings, and is told so.
    p = subprocess.run(
        [*SOUVERAIN, "privacy", "scan", "--config", str(tenants.config), "--tenant", "nobody"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 0 and "no privacy settings of its own" in p.stderr
    assert json.loads(p.stdout)["summary"]["counts"] == seen["default"]


# -- configuration errors ---------------------------------------------------------------

BROKEN = [
    (
        "privacy:\n  tenants:\n    hr:\n      thresholds: {PERSNO: 0.7}\n",
        4,
        "privacy.tenants.hr.thresholds.PERSNO",
        "unknown type 'PERSNO'",
    ),
    ("privacy:\n  disabled: [IBAN, EMAIL_ADDRESS]\n", 2, "privacy.disabled[1]", "unknown type 'EMAIL_ADDRESS'"),
    ("privacy:\n  classes: {PROJECT: internal}\n", 2, "privacy.classes.PROJECT", "unknown type 'PROJECT'"),
    (
        "privacy:\n  tenants:\n    a: {}\n    b:\n      threshold: 1.5\n",
        5,
        "privacy.tenants.b.threshold",
        "Expected `float` <= 1.0",
    ),
    ("privacy:\n  classes:\n    VAT: secret\n", 3, "privacy.classes.VAT", "Invalid enum value 'secret'"),
    (
        "privacy:\n  allow:\n    - Jean Monnet\n    - 're:(DE89'\n",
        4,
        "privacy.allow[1]",
        "not a valid regular expression",
    ),
    (
        "privacy:\n  tenants:\n    hr:\n      dictionaries:\n        STAFF: {file: lists/staff.txt}\n",
        5,
        "privacy.tenants.hr.dictionaries.STAFF.file",
        "cannot read {conf}/lists/staff.txt: No such file or directory",
    ),
    ("privacy:\n  names_table: lists/names.tsv\n", 2, "privacy.names_table", "cannot read {conf}/lists/names.tsv"),
    # spaCy itself is installed only with the benchmark's extra packages
    (
        "privacy:\n  spacy_model: xx_no_such_model\n",
        2,
        "privacy.spacy_model",
        "spaCy model 'xx_no_such_model' is not installed"
        if importlib.util.find_spec("spacy")
        else "spaCy is not installed",
    ),
    (
        "privacy:\n  tenants:\n    hr:\n      deny: [x]\n    ops:\n      treshold: 0.3\n",
        6,
        "privacy.tenants.ops.treshold",
        "unknown key",
    ),
    (
        "privacy:\n  dictionaries:\n    'code name': [Apollo]\n",
        3,
        "privacy.dictionaries.code name",
        "a dictionary's type",
    ),
    ("privacy:\n  phone_regions: [FR, EU]\n", 2, "privacy.phone_regions[1]", "unknown region 'EU'"),
]


@pytest.mark.parametrize(("content", "line", "key", "message"), BROKEN, ids=[b[2] for b in BROKEN])
def test_config_check_names_file_line_and_key(tmp_path: Path, content: str, line: int, key: str, message: str) -> None:
    conf, cwd = tmp_path / "conf", tmp_path / "cwd"
    conf.mkdir()
    # Files that exist relative to the working directory, not to the configuration file.
    (cwd / "lists").mkdir(parents=True)
    (cwd / "lists" / "staff.txt").write_text("Zyx Qwerty\n")
    (cwd / "lists" / "names.tsv").write_text("marie\t1\n")
    (conf / "broken.yaml").write_text(content)
    p = subprocess.run(
        [*SOUVERAIN, "config", "check", "../conf/broken.yaml"], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2 and p.stdout == ""
    expected = f"souverain: configuration error: ../conf/broken.yaml:{line}: {key}: {message.format(conf=conf)}"
    assert p.stderr.startswith(expected), p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.splitlines()) == 1


def test_the_same_files_are_found_next_to_the_config(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "lists").mkdir(parents=True)
    (conf / "lists" / "staff.txt").write_text("Zyx Qwerty\n")
    (conf / "lists" / "names.tsv").write_text("# token, flags\nmarie\t1\n")
    (conf / "ok.yaml").write_text(
        "privacy:\n  names_table: lists/names.tsv\n  tenants:\n    hr:\n      dictionaries:\n"
        "        STAFF: {file: lists/staff.txt}\n      classes: {STAFF: personal}\n"
    )
    p = subprocess.run(
        [*SOUVERAIN, "config", "check", str(conf / "ok.yaml")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    bad = conf / "lists" / "names.tsv"
    bad.write_text("marie\tfirst\n")
    p = subprocess.run(
        [*SOUVERAIN, "config", "check", str(conf / "ok.yaml")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2
    assert f"ok.yaml:2: privacy.names_table: {bad}:1: expected TOKEN<TAB>FLAGS" in p.stderr


def test_serve_refuses_to_start_with_the_same_message(tmp_path: Path) -> None:
    (tmp_path / "souverain.yaml").write_text(BROKEN[0][0])
    p = subprocess.run(
        [*SOUVERAIN, "serve", "--port", "0", "--config", "souverain.yaml"],
        cwd=tmp_path,
        env={**os.environ, "SOUVERAIN_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "souverain: configuration error: souverain.yaml:4: privacy.tenants.hr.thresholds.PERSNO: "
        "unknown type 'PERSNO'; `souverain privacy types` lists the built-in ones, "
        "besides DENYLIST and the types of `dictionaries`"
    )
    assert "listening" not in p.stdout
