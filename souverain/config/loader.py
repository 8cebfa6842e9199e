"""Load `souverain.yaml`: parse, substitute ${ENV_VARS}, validate, and explain errors.

YAML is composed into nodes first so that every value keeps its line. When validation
fails, msgspec reports a path such as `$.models[0].n_ctx`; we walk the node tree along
that path to name the line, so an operator reads `souverain.yaml:7: models[0].n_ctx: ...`.

File paths in the `privacy:` section (dictionary files, names tables) are relative to the
configuration file's directory: `load_config` makes them absolute, so the `Config` it
returns means the same from any working directory. (`state_dir`, `routing.pipes` and
model paths are relative to the working directory.)
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml

from souverain.config.schema import Config, DictionaryFile, OpenAIHTTPModel, PrivacyConfig
from souverain.errors import ConfigError
from souverain.ledger.config import PostgresStoreConfig, SqliteStoreConfig
from souverain.privacy.config import SettingError, key_path
from souverain.state.config import PostgresStateConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")
_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`)?$", re.S)


def load_config(path: str | os.PathLike | None, env: dict[str, str] | None = None) -> Config:
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


def compose(text: str, filename: str, env: dict[str, str]) -> tuple[yaml.Node | None, dict[str, Any]]:
    """YAML text → (node tree for line numbers, plain data with ${ENV} substituted).
    Shared by every YAML file the gateway reads (this one, pipes files)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    data = {} if root is None else _to_python(root, filename, env, "")
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}:1: expected a mapping of settings at the top level")
    return root, data


def parse_config(text: str, filename: str, env: dict[str, str], base_dir: Path | None = None) -> Config:
    """Validate configuration text. `base_dir` is the directory of the file the text came
    from: privacy file paths are resolved against it and the files read and checked.
    Without it (text with no file behind it) those files are neither resolved nor read."""
    root, data = compose(text, filename, env)
    try:
        config = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), root, filename, data)) from None
    _check_semantics(config, filename, root)
    _check_privacy(config.privacy, filename, root, base_dir)
    return config


def _to_python(node: yaml.Node, filename: str, env: dict[str, str], where: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise ConfigError(f"{filename}:{key_node.start_mark.line + 1}: {where + key}: duplicate key")
            out[key] = _to_python(value_node, filename, env, f"{where}{key}.")
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, filename, env, f"{where[:-1]}[{i}].") for i, item in enumerate(node.value)]
    value = yaml.SafeLoader(yaml.dump(None)).construct_object(node, deep=True)
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{filename}:{node.start_mark.line + 1}: {where[:-1]}: environment variable {name} is not set"
                )
            return env[name]

        whole = _ENV.fullmatch(value)
        value = _ENV.sub(substitute, value)
        if whole:
            # `port: ${PORT}` should give a number: read the value as a YAML scalar.
            try:
                typed = yaml.safe_load(value)
            except yaml.YAMLError:
                typed = value
            if isinstance(typed, (bool, int, float)):
                return typed
    return value


def _explain(message: str, root: yaml.Node | None, filename: str, data: Any = None) -> str:
    match = _MSGSPEC_AT.match(message)
    assert match is not None
    msg, path = match.group("msg"), match.group("path") or "$"
    if match.group("key"):
        msg = f"{msg} (as a key)"
    steps: list[str | int | None] = [
        None if m.group(0) == "[...]" else m.group(1) if m.group(1) else int(m.group(2))
        for m in _PATH_STEP.finditer(path)
    ]
    steps = _pin_mapping_keys(steps, message, data)
    unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
    if unknown:
        steps.append(unknown.group(1))
        msg = "unknown key; see `souverain config schema` or docs/configuration.md for the keys allowed here"
    missing = re.match(r"Object missing required field `([^`]+)`", msg)
    if missing:
        msg = f"missing required key `{missing.group(1)}`"
    node, line = _locate(root, steps)
    dotted = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps).lstrip(".") or "(top level)"
    return f"{filename}:{line}: {dotted}: {msg}"


def _pin_mapping_keys(steps: list[str | int | None], message: str, data: Any) -> list[str | int]:
    """msgspec names a value inside a mapping `[...]` (`$.privacy.tenants[...].threshold`):
    find which key by validating again with that mapping cut down to one key at a time;
    the first key that alone gives the same error is the one at fault."""
    while None in steps:
        at = steps.index(None)
        container = _walk(data, steps[:at])
        if not isinstance(container, dict):
            return [s for s in steps[:at] if s is not None]
        for key, value in container.items():
            trial = _replace_at(data, steps[:at], {key: value})
            try:
                msgspec.convert(trial, Config)
            except msgspec.ValidationError as exc:
                if str(exc) == message:
                    steps[at], data = key, trial
                    break
        else:
            return [s for s in steps[:at] if s is not None]
    return steps  # type: ignore[return-value]


def _walk(data: Any, steps: list[str | int | None]) -> Any:
    for step in steps:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _replace_at(data: Any, steps: list[str | int | None], value: Any) -> Any:
    """A copy of `data` with the value at `steps` replaced (only the path is copied)."""
    if not steps:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[steps[0]] = _replace_at(data[steps[0]], steps[1:], value)  # type: ignore[index]
    return copy


def _locate(root: yaml.Node | None, steps: list[str | int]) -> tuple[yaml.Node | None, int]:
    node, line = root, 1 if root is None else root.start_mark.line + 1
    for step in steps:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key_node, value_node in node.value:
                if key_node.value == step:
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                return node, line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return node, line
    return node, line


def _check_semantics(config: Config, filename: str, root: yaml.Node | None) -> None:
    """Rules a schema cannot express: unique names, URLs, and the air gap."""
    seen: set[str] = set()
    for i, model in enumerate(config.models):
        if model.name in seen:
            _, line = _locate(root, ["models", i, "name"])
            raise ConfigError(f"{filename}:{line}: models[{i}].name: duplicate model name {model.name!r}")
        seen.add(model.name)
        if isinstance(model, OpenAIHTTPModel):
            _, line = _locate(root, ["models", i, "base_url"])
            parts = urlsplit(model.base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"{filename}:{line}: models[{i}].base_url: expected an http:// or https:// URL, got {model.base_url!r}"
                )
            if parts.username is not None or parts.password is not None:
                # httpx would send them as Basic auth, or fail on every request; and the
                # URL is printed in places a secret should not be (never the password here).
                raise ConfigError(
                    f"{filename}:{line}: models[{i}].base_url: credentials in the URL are not accepted; "
                    "give the upstream's token as the model's api_key (${ENV_VAR} takes it from the environment)"
                )
            if config.air_gap.enabled and not is_local_host(parts.hostname, config.air_gap.allowed_hosts):
                raise ConfigError(
                    f"{filename}:{line}: models[{i}].base_url: air gap is on and {parts.hostname!r} is not a local "
                    "host; add it to air_gap.allowed_hosts if the organisation runs it, or set air_gap.enabled: false"
                )
    _check_state(config, filename, root)
    if config.air_gap.enabled:
        _check_ledger_hosts(config, filename, root)
    if not config.models:
        _, line = _locate(root, ["models"])
        raise ConfigError(f"{filename}:{line}: models: at least one model is required")


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
        privacy.scanner_configs(read_files=base_dir is not None)
    except SettingError as exc:
        _, line = _locate(root, ["privacy", *exc.key])
        raise ConfigError(f"{filename}:{line}: {key_path(('privacy', *exc.key))}: {exc.message}") from None


def _absolute(path: str, base_dir: Path) -> str:
    expanded = Path(os.path.expanduser(path))
    return str(expanded if expanded.is_absolute() else base_dir / expanded)


def _check_state(config: Config, filename: str, root: yaml.Node | None) -> None:
    """`state:` and `ledger.store` agree, and no password is written in the file."""
    state = config.state
    if not isinstance(state, PostgresStateConfig):
        return
    if isinstance(config.ledger.store, SqliteStoreConfig):
        _, line = _locate(root, ["ledger", "store"])
        raise ConfigError(
            f"{filename}:{line}: ledger.store: a SQLite ledger with `state: {{kind: postgres}}` would give each "
            "replica a log of its own; remove ledger.store (the ledger then lives in the state's database)"
        )
    node, line = _locate(root, ["state", "dsn"])
    raw = node.value if isinstance(node, yaml.ScalarNode) else state.dsn
    if _written_password(raw):
        raise ConfigError(
            f"{filename}:{line}: state.dsn: a password written in the file; take it from the environment "
            "(PGPASSWORD, a PGPASSFILE, or ${ENV_VAR} in the DSN)"
        )


def _written_password(dsn: str) -> bool:
    """Whether a DSN (as written, before ${ENV} substitution) holds a literal password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # noqa: BLE001 - reported as a bad DSN by the host check
        return False
    return password is not None and not _ENV.fullmatch(str(password))


def _check_ledger_hosts(config: Config, filename: str, root: yaml.Node | None) -> None:
    """The ledger's and the state's outbound connections (witnesses, PostgreSQL) obey the
    air gap too."""
    allowed = config.air_gap.allowed_hosts
    for i, witness in enumerate(config.ledger.witnesses):
        host = urlsplit(witness.url).hostname or ""
        if not is_local_host(host, allowed):
            _, line = _locate(root, ["ledger", "witnesses", i, "url"])
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


def _check_dsn_host(
    dsn: str, steps: list[str | int], allowed: list[str], filename: str, root: yaml.Node | None
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    key = ".".join(str(s) for s in steps)
    try:
        hosts = str(conninfo_to_dict(dsn).get("host") or "").split(",")
    except Exception as exc:
        _, line = _locate(root, steps)
        raise ConfigError(f"{filename}:{line}: {key}: not a PostgreSQL connection string: {exc}") from None
    for host in hosts:
        # Empty or a directory: a Unix socket on this machine.
        if host and not host.startswith("/") and not is_local_host(host, allowed):
            _, line = _locate(root, steps)
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
