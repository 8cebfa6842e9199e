"""Find European personal data in prompts, and pseudonymise it reversibly.

The interface the gateway uses (each name is documented where it is defined):

    scan(text) -> list[Finding]                     scanner.py
    scan_request(request) -> list[Finding]          scanner.py (findings carry .path)
    classify(findings) -> Classification            scanner.py (types and counts, never values)
    Scanner(ScannerConfig) / load_config(path)      scanner.py, config.py (per tenant)
    pseudonymise(request) -> (request, Vault)       vault.py
    Vault.restore(text), Restorer.feed(chunk)       vault.py (streaming restore)
    mask / redact / hash_values (text, findings)    actions.py; apply(request, action) for a request
    DataClass (souverain.classes), Finding          findings.py

The hot modules are compiled with mypyc when the package is installed (setup.py);
`native` decides, before any of them is imported, whether the compiled ones match their
sources and are used, or the pure-Python ones are.
"""

from souverain.classes import DataClass
from souverain.privacy import native  # noqa: F401  (first: it decides where the modules below load from)
from souverain.privacy.actions import apply, hash_values, mask, redact
from souverain.privacy.config import ScannerConfig, load_config
from souverain.privacy.findings import TYPES, Finding
from souverain.privacy.scanner import Classification, Scanner, classify, default_scanner, scan, scan_request
from souverain.privacy.vault import Restorer, Vault, pseudonymise

__all__ = [
    "TYPES",
    "Classification",
    "DataClass",
    "Finding",
    "Restorer",
    "Scanner",
    "ScannerConfig",
    "Vault",
    "apply",
    "classify",
    "default_scanner",
    "hash_values",
    "load_config",
    "mask",
    "pseudonymise",
    "redact",
    "scan",
    "scan_request",
]
