"""Load `souverain.yaml`: parse, substitute ${ENV_VARS}, validate, and check what a schema
cannot say (unique names, URLs, the air gap, the privacy section's files and types).

Parsing and line-accurate errors (`souverain.yaml:7: models[0].n_ctx: ...`) are the shared
YAML loader's (`souverain/yamlfile.py`); this module adds the configuration's own rules.

File paths in the `privacy:` section (dictionary files, names tables) are relative to the
configuration file's directory: `load_config` makes them absolute, so the `Config` it
returns means the same from any working directory. (`state_dir`, `routing.pipes` and
model paths are relative to the working directory.)
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from souverain import yamlfile
from souverain.config.schema import Config, LlamaCppModel, OpenAIHTTPModel
from souverain.errors import ConfigError
from souverain.ledger.config import PostgresStoreConfig, SqliteStoreConfig
from souverain.privacy.config import SettingError, key_path, scanner_configs
from souverain.privacy.settings import DictionaryFile, PrivacyConfig
from souverain.state.config import PostgresStateConfig
from souverain.usage.config import RedisBudgets


def load_config(path: str | os.PathLike[str] | None, env: dict[str, str] | None = None) -> Config:
    """Read and validate a configuration file; None gives the built-in defaults."""
    if path is None:
        config = Config()
        _check_semantics(config, "<defaults>", None)
        return config
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    env = env if env is not None else dict(os.environ)
    return parse_config(text, str(source), env, base_dir=Path(os.path.abspath(source)).parent)


def parse_config(text: str, filename: str, env: dict[str, str], base_dir: Path | None = None) -> Config:
    """Validate configuration text. `base_dir` is the directory of the file the text came
    from: privacy file paths are resolved against it and the files read and checked.
    Without it (text with no file behind it) those files are neither resolved nor read."""
    root, data = yamlfile.compose(text, filename, env)
    config = yamlfile.convert(data, Config, root, filename, hint="`souverain config schema` or docs/configuration.md")
    _check_semantics(config, filename, root)
    _check_privacy(config.privacy, filename, root, base_dir)
    return config


def _check_semantics(config: Config, filename: str, root: yaml.Node | None) -> None:
    """Rules a schema cannot express: unique names, URLs, and the air gap."""
    seen: set[str] = set()
    for i, model in enumerate(config.models):
        if model.name in seen:
            line = yamlfile.line_of(root, ["models", i, "name"])
            raise ConfigError(f"{filename}:{line}: models[{i}].name: duplicate model name {model.name!r}")
        seen.add(model.name)
        if isinstance(model, OpenAIHTTPModel):
            _outbound_url(
                config,
                model.base_url,
                f"{filename}:{yamlfile.line_of(root, ['models', i, 'base_url'])}: models[{i}].base_url",
                expected="an http:// or https:// URL",
                credentials="give the upstream's token as the model's api_key (${ENV_VAR} takes it from the environment)",
                runs="it",
            )
    _check_state(config, filename, root)
    _check_secrets(config, filename, root)
    _check_usage(config, filename, root)
    _check_telemetry(config, filename, root)
    if config.air_gap.enabled:
        _check_ledger_hosts(config, filename, root)
    if not config.models:
        line = yamlfile.line_of(root, ["models"])
        raise ConfigError(f"{filename}:{line}: models: at least one model is required")


def _check_usage(config: Config, filename: str, root: yaml.Node | None) -> None:
    """Each self-hosted cost model names a route the configuration has (as the usage
    records name it: `models[].route`, else the built-in `local` or `undeclared`): a typo
    would otherwise price nothing and compare nothing, silently."""
    known = {m.route or ("local" if isinstance(m, LlamaCppModel) else "undeclared") for m in config.models}
    for i, hosted in enumerate(config.usage.self_hosted):
        if hosted.route not in known:
            line = yamlfile.line_of(root, ["usage", "self_hosted", i, "route"])
            raise ConfigError(
                f"{filename}:{line}: usage.self_hosted[{i}].route: no model is on a route named {hosted.route!r} "
                f"(the routes of models[]: {', '.join(sorted(known))})"
            )


def _check_privacy(privacy: PrivacyConfig, filename: str, root: yaml.Node | None, base_dir: Path | None) -> None:
    """Make the privacy section's file paths absolute (relative to `base_dir`), then build
    every tenant's scanner settings as the gateway will, files read, to report mistakes
    (unknown types, bad `re:` entries, missing files, a spaCy model not installed) here."""
    if base_dir is not None:
        for settings in (privacy, *privacy.tenants.values()):
            if isinstance(settings.names_table, str):
                settings.names_table = _absolute(settings.names_table, base_dir)
            if isinstance(settings.dictionaries, dict):
                for type_, spec in settings.dictionaries.items():
                    if isinstance(spec, DictionaryFile):
                        settings.dictionaries[type_] = DictionaryFile(file=_absolute(spec.file, base_dir))
    try:
        scanner_configs(privacy, read_files=base_dir is not None)
    except SettingError as exc:
        line = yamlfile.line_of(root, ["privacy", *exc.key])
        raise ConfigError(f"{filename}:{line}: {key_path(('privacy', *exc.key))}: {exc.message}") from None


def _absolute(path: str, base_dir: Path) -> str:
    expanded = Path(os.path.expanduser(path))
    return str(expanded if expanded.is_absolute() else base_dir / expanded)


def _check_state(config: Config, filename: str, root: yaml.Node | None) -> None:
    """`state:` and `ledger.store` agree."""
    state = config.state
    if not isinstance(state, PostgresStateConfig):
        return
    if isinstance(config.ledger.store, SqliteStoreConfig):
        line = yamlfile.line_of(root, ["ledger", "store"])
        raise ConfigError(
            f"{filename}:{line}: ledger.store: a SQLite ledger with `state: {{kind: postgres}}` would give each "
            "replica a log of its own; remove ledger.store (the ledger then lives in the state's database)"
        )


def _check_secrets(config: Config, filename: str, root: yaml.Node | None) -> None:
    """No password written in the file, in any connection string: the state's, the
    ledger's or the budget store's. A file in Git is read by more people than a Secret."""
    places: list[list[str | int]] = []
    if isinstance(config.state, PostgresStateConfig):
        places.append(["state", "dsn"])
    if isinstance(config.ledger.store, PostgresStoreConfig):
        places.append(["ledger", "store", "dsn"])
    if isinstance(config.usage.budget_store, RedisBudgets):
        places.append(["usage", "budget_store", "url"])
    for steps in places:
        node, line = yamlfile.locate(root, steps)
        # As written, before ${VAR}; a value the file does not hold (the ledger's store
        # following `state:`) is checked where it is written.
        if isinstance(node, yaml.ScalarNode) and _written_password(node.value):
            raise ConfigError(
                f"{filename}:{line}: {key_path(tuple(steps))}: a password written in the file; take it from the "
                "environment (PGPASSWORD, a PGPASSFILE, or ${ENV_VAR} in the DSN or URL)"
            )


def _written_password(dsn: str) -> bool:
    """Whether a DSN or URL (as written, before ${ENV} substitution) holds a literal password."""
    from psycopg.conninfo import conninfo_to_dict

    password: object
    try:
        if dsn.startswith(("redis://", "rediss://", "unix://")):
            password = urlsplit(dsn).password
        else:
            password = conninfo_to_dict(dsn).get("password")
    except Exception:  # noqa: BLE001 - reported as a bad DSN by the host check
        return False
    return password is not None and not yamlfile.ENV_VAR.fullmatch(str(password))


def _outbound_url(
    config: Config, url: str, where: str, *, expected: str, credentials: str, runs: str, base_only: bool = False
) -> None:
    """An outbound URL the operator configured: http(s) with a host (and, `base_only`, no
    query or fragment), no credentials in it (httpx would send them as Basic auth, and the
    URL is printed where a secret should not be), and, with the air gap on, a local host.
    `where` is `file:line: key`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or (base_only and (parts.query or parts.fragment)):
        raise ConfigError(f"{where}: expected {expected}, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{where}: credentials in the URL are not accepted; {credentials}")
    if config.air_gap.enabled and not is_local_host(parts.hostname, config.air_gap.allowed_hosts):
        raise ConfigError(
            f"{where}: air gap is on and {parts.hostname!r} is not a local host; "
            f"add it to air_gap.allowed_hosts if the organisation runs {runs}, or set air_gap.enabled: false"
        )


def _check_telemetry(config: Config, filename: str, root: yaml.Node | None) -> None:
    """The collector is an outbound connection: an http(s) URL without credentials, whose
    host obeys the air gap; its headers come from the environment, never the file."""
    telemetry = config.telemetry
    if telemetry.endpoint is not None:
        _outbound_url(
            config,
            telemetry.endpoint,
            f"{filename}:{yamlfile.line_of(root, ['telemetry', 'endpoint'])}: telemetry.endpoint",
            expected="the collector's OTLP/HTTP base URL (http:// or https://, e.g. http://127.0.0.1:4318)",
            credentials="give them as telemetry.headers taken from the environment (${ENV_VAR})",
            runs="the collector",
            base_only=True,
        )
    for name in telemetry.headers:
        node, line = yamlfile.locate(root, ["telemetry", "headers", name])
        raw = node.value if isinstance(node, yaml.ScalarNode) else ""
        if root is not None and not yamlfile.ENV_VAR.fullmatch(str(raw)):
            raise ConfigError(
                f"{filename}:{line}: telemetry.headers.{name}: a value written in the file; take it from the "
                "environment (${ENV_VAR}), so no secret is kept in the configuration"
            )


def _check_ledger_hosts(config: Config, filename: str, root: yaml.Node | None) -> None:
    """The ledger's and the state's outbound connections (witnesses, PostgreSQL) obey the
    air gap too."""
    allowed = config.air_gap.allowed_hosts
    for i, witness in enumerate(config.ledger.witnesses):
        host = urlsplit(witness.url).hostname or ""
        if not is_local_host(host, allowed):
            line = yamlfile.line_of(root, ["ledger", "witnesses", i, "url"])
            raise ConfigError(
                f"{filename}:{line}: ledger.witnesses[{i}].url: air gap is on and {host!r} is not a local host; "
                "add it to air_gap.allowed_hosts"
            )
    dsns: list[tuple[str, list[str | int]]] = []
    if isinstance(config.state, PostgresStateConfig):
        dsns.append((config.state.dsn, ["state", "dsn"]))
    store = config.ledger.store
    if isinstance(store, PostgresStoreConfig) and not any(dsn == store.dsn for dsn, _ in dsns):
        dsns.append((store.dsn, ["ledger", "store", "dsn"]))
    for dsn, steps in dsns:
        _check_dsn_host(dsn, steps, allowed, filename, root)
    budgets = config.usage.budget_store
    if isinstance(budgets, RedisBudgets):  # a Unix socket (unix://) has no host: local
        host = urlsplit(budgets.url).hostname or ""
        if host and not is_local_host(host, allowed):
            line = yamlfile.line_of(root, ["usage", "budget_store", "url"])
            raise ConfigError(
                f"{filename}:{line}: usage.budget_store.url: air gap is on and {host!r} is not a local host; "
                "add it to air_gap.allowed_hosts"
            )


def _check_dsn_host(
    dsn: str, steps: list[str | int], allowed: list[str], filename: str, root: yaml.Node | None
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    key = ".".join(str(s) for s in steps)
    try:
        hosts = str(conninfo_to_dict(dsn).get("host") or "").split(",")
    except Exception as exc:
        line = yamlfile.line_of(root, steps)
        raise ConfigError(f"{filename}:{line}: {key}: not a PostgreSQL connection string: {exc}") from None
    for host in hosts:
        # Empty or a directory: a Unix socket on this machine.
        if host and not host.startswith("/") and not is_local_host(host, allowed):
            line = yamlfile.line_of(root, steps)
            raise ConfigError(
                f"{filename}:{line}: {key}: air gap is on and {host!r} is not a local host; "
                "add it to air_gap.allowed_hosts"
            )


def is_local_host(host: str, allowed: list[str]) -> bool:
    """True for loopback addresses, `localhost`, and hosts the operator listed."""
    host = host.lower()
    if host == "localhost" or host in {h.lower() for h in allowed}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
