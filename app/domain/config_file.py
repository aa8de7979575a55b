"""Alerting as code: the YAML file `telemetry-collector apply` reads and `export` writes.

```yaml
channels:            # app/domain/channels.py, by name
  - name: oncall
    type: webhook
    url: ${ONCALL_WEBHOOK_URL}
rules:               # app/domain/alert_rules.py; `channels` by channel name
  - name: LLM error rate
    signal: spans
    query: {aggregation: error_rate, filters: {category: llm}, window: 5m, group_by: [model]}
    condition: {op: ">", threshold: 0.05}
    channels: [oncall]
  - name: New error group   # a built-in rule: only enabled, channels, labels, annotations
    builtin: true
    enabled: false
silences:            # app/domain/silences.py; addressed by name
  - name: friday-deploy
    matchers: [{name: service, value: assistant-api}]
    starts_at: 2026-12-04T16:00:00Z
    ends_at: 2026-12-04T18:00:00Z
slos:                # app/domain/slos.py; `alerting.channels` by channel name
  - name: chat availability
    service: assistant-api
    sli: {type: availability}
    objective: 99.5
    window: 28d
```

Contract:
- Every item has a `name`, unique within its section. `${VAR}` in any string is replaced
  by the environment variable (a missing one is an error; `$${` writes a literal `${`),
  so secrets stay out of git.
- Everything is validated before anything is applied, with the parsers the API uses;
  errors name the file, the section and index, the item and the field:
  `alerting.yaml: rules[2] "LLM error rate": query.window: must be between 1m and 31d`.
- `plan` compares the file with what the project has, by name, on the validated stored
  form, so applying the same file twice changes nothing; `prune` deletes what the file
  no longer names (built-in rules are never deleted; only named silences are pruned, so
  an on-call engineer's ad-hoc silence survives a deploy of the file).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from app.domain.alert_rules import InvalidRule, parse_rule
from app.domain.builtin_rules import EDITABLE_FIELDS
from app.domain.channels import MASK, InvalidChannel, parse_channel
from app.domain.silences import InvalidSilence, SilenceSpec, parse_silence
from app.domain.slos import InvalidSlo, parse_slo

SECTIONS = ("channels", "slos", "rules", "silences")
_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INVALID = (InvalidRule, InvalidChannel, InvalidSilence, InvalidSlo, ValueError)


class ConfigFileError(ValueError):
    """The file cannot be applied; the message names the file, the item and the field."""


@dataclass(frozen=True, slots=True)
class Item:
    """One validated entry of the file.

    `document` is the stored form the API would keep (channel references still by name,
    under `channel_names`, since ids differ between projects and databases).
    """

    section: str
    index: int
    name: str
    document: dict[str, Any]
    channel_names: tuple[str, ...] = ()
    builtin: bool = False
    # Set when the entry is valid but has nothing to apply (a silence that has ended).
    skip: str | None = None
    # A channel with secrets masked as an export writes them: completed from the project.
    masked: bool = False


@dataclass(slots=True)
class ConfigFile:
    source: str
    items: dict[str, list[Item]] = field(default_factory=lambda: {s: [] for s in SECTIONS})

    def names(self, section: str) -> set[str]:
        return {item.name for item in self.items[section]}


@dataclass(frozen=True, slots=True)
class Change:
    section: str
    name: str
    action: str  # create, update, delete, unchanged, skip
    item: Item | None = None


def expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    """`${VAR}` replaced in every string of a parsed YAML value."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            if name not in env:
                raise ConfigFileError(f"{where}: environment variable {name} is not set")
            return env[name]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [expand(item, env, where) for item in value]
    if isinstance(value, dict):
        return {key: expand(item, env, where) for key, item in value.items()}
    return value


def load(text: str, source: str, env: Mapping[str, str]) -> ConfigFile:
    """Parse and validate a whole file; raises ConfigFileError at the first problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigFileError(f"{source}: not valid YAML: {error}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigFileError(f"{source}: the file must be a mapping of {', '.join(SECTIONS)}")
    unknown = sorted(str(key) for key in document if key not in SECTIONS)
    if unknown:
        raise ConfigFileError(
            f"{source}: unknown section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}"
        )
    config = ConfigFile(source)
    for section in SECTIONS:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise ConfigFileError(f"{source}: {section} must be a list")
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            where = f"{source}: {section}[{index}]"
            if not isinstance(entry, dict):
                raise ConfigFileError(f"{where}: must be a mapping with a name")
            name = entry.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ConfigFileError(f"{where}: name: required")
            where = f"{where} {name!r}"
            if name in seen:
                raise ConfigFileError(f"{where}: name: {section} names it twice")
            seen.add(name)
            entry = expand(entry, env, where)
            try:
                item = _PARSERS[section](section, index, entry)
            except _INVALID as error:
                raise ConfigFileError(f"{where}: {error}") from None
            config.items[section].append(item)
    for section in ("rules", "slos"):
        for item in config.items[section]:
            _check_channel_names(config, item)
    return config


def _check_channel_names(config: ConfigFile, item: Item) -> None:
    for name in item.channel_names:
        if not isinstance(name, str):
            raise ConfigFileError(
                f"{config.source}: {item.section}[{item.index}] {item.name!r}: channels: "
                f"name channels by their name, not {name!r}"
            )


def _names(value: Any, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{field_name}: a list of channel names")
    return tuple(dict.fromkeys(value))


def _channel(section: str, index: int, entry: dict[str, Any]) -> Item:
    if _is_masked(entry):
        # An export's `***` stands for the stored secret: parsed once it is put back.
        masked_free = {**entry, "url": "https://masked.invalid/", "headers": {}}
        parse_channel(masked_free)  # everything else is checked now
        return Item(section, index, entry["name"], dict(entry), masked=True)
    spec = parse_channel(entry)
    return Item(section, index, spec.name, spec.document())


def _is_masked(entry: dict[str, Any]) -> bool:
    url = entry.get("url")
    headers = entry.get("headers")
    return (isinstance(url, str) and url.endswith("/" + MASK)) or (
        isinstance(headers, dict) and MASK in headers.values()
    )


def _rule(section: str, index: int, entry: dict[str, Any]) -> Item:
    entry = dict(entry)
    names = _names(entry.pop("channels", None), "channels")
    if entry.pop("builtin", False):
        extra = sorted(set(entry) - {"name", *EDITABLE_FIELDS})
        if extra:
            raise ValueError(
                f"{extra[0]}: a built-in rule's {extra[0]} cannot change; "
                f"set only {', '.join(EDITABLE_FIELDS)}"
            )
        return Item(section, index, entry["name"], entry, names, builtin=True)
    spec = parse_rule(entry)
    document = spec.document()
    document.pop("channels", None)
    return Item(section, index, spec.name, document, names)


def _silence(section: str, index: int, entry: dict[str, Any]) -> Item:
    try:
        spec = parse_silence(entry)
    except InvalidSilence as error:
        # A maintenance window that has passed is history, not a mistake in the file.
        if str(error).startswith("ends_at: must be in the future"):
            return Item(section, index, entry["name"], dict(entry), skip="it has ended")
        raise
    document = silence_document(spec)
    if "starts_at" not in entry:
        document["starts_at"] = None  # "from when it is applied": keeps a stored start
    return Item(section, index, entry["name"], document)


def silence_document(spec: SilenceSpec) -> dict[str, Any]:
    """A silence in the file's form (and the form stored silences are compared in)."""
    return spec.model_dump(mode="json")


def _slo(section: str, index: int, entry: dict[str, Any]) -> Item:
    entry = dict(entry)
    alerting = dict(entry.get("alerting") or {})
    names = _names(alerting.pop("channels", None), "alerting.channels")
    if "alerting" in entry:
        entry["alerting"] = alerting
    spec = parse_slo(entry)
    document = spec.document()
    document.get("alerting", {}).pop("channels", None)
    return Item(section, index, spec.name, document, names)


_PARSERS: dict[str, Callable[[str, int, dict[str, Any]], Item]] = {
    "channels": _channel,
    "rules": _rule,
    "silences": _silence,
    "slos": _slo,
}


@dataclass(frozen=True, slots=True)
class Current:
    """What a project has, per section and name, in the same form as `Item.document`
    (channel references by name in `channel_names`)."""

    documents: dict[str, dict[str, dict[str, Any]]]
    channel_names: dict[str, dict[str, tuple[str, ...]]]
    builtin_rules: frozenset[str]
    # Named silences that have ended: their names are taken, nothing is left to prune.
    expired_silences: frozenset[str] = frozenset()


def plan(config: ConfigFile, current: Current, *, prune: bool) -> list[Change]:
    """The changes that make the project match the file, in a safe order: channels are
    created before what references them, and deleted after what referenced them."""
    changes: list[Change] = []
    for section in SECTIONS:
        existing = current.documents.get(section, {})
        existing_refs = current.channel_names.get(section, {})
        for item in config.items[section]:
            if item.section == "rules" and item.name in current.builtin_rules:
                if not item.builtin:
                    raise ConfigFileError(
                        f"{config.source}: rules[{item.index}] {item.name!r}: name: this is a "
                        "built-in rule; mark it `builtin: true` and set only "
                        + ", ".join(EDITABLE_FIELDS)
                    )
                stored = existing.get(item.name, {})
                same = all(
                    key == "channels" or stored.get(key) == value
                    for key, value in item.document.items()
                    if key != "name"
                ) and (existing_refs.get(item.name, ()) == item.channel_names)
                changes.append(Change(section, item.name, "unchanged" if same else "update", item))
                continue
            if item.skip:
                changes.append(Change(section, item.name, "skip", item))
                continue
            if item.builtin:
                raise ConfigFileError(
                    f"{config.source}: rules[{item.index}] {item.name!r}: builtin: no built-in "
                    "rule has this name"
                )
            wanted = item.document
            if section == "silences" and wanted.get("starts_at") is None:
                # Left out of the file: "from when it was applied", whatever that was.
                wanted = {**wanted, "starts_at": existing.get(item.name, {}).get("starts_at")}
            if item.name not in existing:
                changes.append(Change(section, item.name, "create", item))
            elif existing[item.name] != wanted or existing_refs.get(item.name, ()) != tuple(
                item.channel_names
            ):
                changes.append(Change(section, item.name, "update", item))
            else:
                changes.append(Change(section, item.name, "unchanged", item))
    if prune:
        deletions = []
        for section in ("rules", "slos", "silences", "channels"):
            named = config.names(section)
            for name in sorted(current.documents.get(section, {})):
                if name in named:
                    continue
                if section == "rules" and name in current.builtin_rules:
                    continue
                if section == "silences" and name in current.expired_silences:
                    continue
                deletions.append(Change(section, name, "delete"))
        changes = changes + deletions
    return changes
