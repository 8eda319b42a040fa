"""The config file as people write it: the encodings Windows editors save, Buddhist-era
dates, password files, and validation errors as one line each saying what to write; and
the copy a backup keeps, without its secrets."""

from __future__ import annotations

import copy
import difflib
import json
import logging
import re
import typing
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from saraban_mail.errors import ConfigError

# A year above this is a Buddhist-era year (พ.ศ.) as clerks write it: 2569 is 2026.
BUDDHIST_ERA_FROM = 2400
BUDDHIST_ERA_OFFSET = 543


def gregorian_date(value: object) -> object:
    """A date given in the Buddhist era (2569-11-30) as the Gregorian date it means; a
    date that is not one is left for pydantic to judge."""
    if isinstance(value, date) and value.year > BUDDHIST_ERA_FROM:
        return value.replace(year=value.year - BUDDHIST_ERA_OFFSET)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*", value)
        if match and int(match.group(1)) > BUDDHIST_ERA_FROM:
            year, month, day = (int(g) for g in match.groups())
            try:
                return date(year - BUDDHIST_ERA_OFFSET, month, day)
            except ValueError:
                raise ValueError(f"{value.strip()} is not a date (Buddhist-era year "
                                 f"{year} is {year - BUDDHIST_ERA_OFFSET})") from None
    return value


_BOM = b"\xef\xbb\xbf"


def decode_config(data: bytes, path: Path) -> str:
    """The text of a config file as Windows editors save it: UTF-8 with or without a BOM
    (Notepad's "UTF-8 with BOM"), or Thai "ANSI", Windows code page 874 (cp874)."""
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp874")
    except UnicodeDecodeError:
        text = ""
    if any("\u0e00" <= ch <= "\u0e7f" for ch in text):
        logging.getLogger("saraban_mail").warning(
            "%s: read as Windows Thai \"ANSI\" (cp874); save it as UTF-8 to be sure", path)
        return text
    raise ConfigError(f"{path}: not UTF-8 nor Windows Thai (cp874) text: save it as UTF-8 "
                      "(in Notepad: File > Save as > Encoding: UTF-8)")


# How a value is written, where pydantic's own words would not help an administrator.
_EXPECTED = {
    "time_parsing": "use HH:MM, e.g. 08:30",
    "time_type": "use HH:MM, e.g. 08:30",
    "date_parsing": "use YYYY-MM-DD, e.g. 2026-12-01 (or 2569-12-01)",
    "date_from_datetime_parsing": "use YYYY-MM-DD, e.g. 2026-12-01 (or 2569-12-01)",
    "date_type": "use YYYY-MM-DD, e.g. 2026-12-01 (or 2569-12-01)",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "int_parsing": "use a whole number, e.g. 5",
    "int_type": "use a whole number, e.g. 5",
    "float_parsing": "use a number, e.g. 40",
    "float_type": "use a number, e.g. 40",
    "string_type": 'use text in quotes, e.g. "..."',
    "list_type": 'use a list in brackets, e.g. ["a", "b"]',
}


def where(loc: tuple) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in loc]
    return ".".join(parts).replace(".[", "[")


def for_people(error: Any, root: type[BaseModel]) -> str:
    """One error of pydantic's in words an administrator acts on."""
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        known = list(model.model_fields) if model else []
        return "unknown setting" + did_you_mean(str(loc[-1]), known)
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]} (not {error.get('input')!r})"
    return str(error["msg"]).removeprefix("Value error, ")


def did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, [k for k in known if k != "source"], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The section (model) a location in the file points into."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None
        kind = field.annotation
        for arg in (kind, *typing.get_args(kind)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                break
        else:
            return None
    return model


def read_secret(value: str, file: Path | None, setting: str = "", env: str = "") -> str:
    """The password given in the environment (or the file, discouraged), else read from
    `file`. A file that cannot be read is named with its setting and how else to give it:
    SARABAN_IMAP__PASSWORD does not give the SMTP password."""
    if value or file is None:
        return value
    try:
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        named = f"{setting}: " if setting else ""
        how = (f"set {env} or write the password in that file (readable only by the service "
               "user)" if env else "write the password in that file (readable only by the "
               "service user)")
        raise ConfigError(f"{named}cannot read password file {file} ({exc.strerror}): {how}"
                          ) from exc


# Keys holding a secret, by section: dropped from the config copy (README.txt says so).
SECRET_KEYS = {"imap": ("password",), "smtp": ("password",), "watch": ("password",),
               "oauth": ("client_secret",)}
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # date, time, datetime: TOML's own forms


def safe_config(raw: dict[str, Any]) -> tuple[str, list[str]]:
    """The config as TOML with its secrets dropped and its folders at the backup's layout;
    and what was dropped (to be supplied again)."""
    dropped = []
    raw = copy.deepcopy(raw)
    for section, keys in SECRET_KEYS.items():
        entries = raw.get(section)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            for key in keys:
                if entry.pop(key, None):
                    dropped.append(f"{section}.{key}" + (f" ({entry.get('name')})"
                                                         if section == "watch" else ""))
    raw.setdefault("paths", {}).update(data_dir="data", register_dir="register",
                                       records_dir="records", rules_dir="rules",
                                       templates_dir="templates")
    raw.setdefault("results", {})["outbox_dir"] = "outbox"
    if isinstance(raw.get("archive"), dict) and raw["archive"].get("dir"):
        raw["archive"]["dir"] = "archive"
    lines = ["# saraban-mail configuration, from a backup: secrets removed (see README.txt)"]
    for section, body in raw.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            if not isinstance(table, dict):
                continue
            lines.append(f"\n[[{section}]]" if isinstance(body, list) else f"\n[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n", dropped
