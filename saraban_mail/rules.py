"""Rules data: the TOML files in rules/ that an administrator edits, loaded and checked.

Each file is validated on load; an error names the file, the table and the key.
A file missing from the configured folder falls back to the shipped default."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from saraban_mail.errors import RulesError
from saraban_mail.letters import StateSenders
from saraban_mail.units import Service, Unit, Units


def default_dir(name: str) -> Path:
    """The shipped defaults: inside the wheel, or beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_defaults" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise RulesError(f"shipped default folder '{name}' is missing from the installation")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    keywords: tuple[str, ...] = ()

    @field_validator("keywords")
    @classmethod
    def _no_empty_keyword(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        if any(not k.strip() for k in keywords):
            raise ValueError("a keyword is empty")
        return keywords


class AgencyRule(_Rule):
    """Another agency whose matters sometimes reach us (rules/agencies.toml)."""

    name_th: str
    name_en: str = ""
    contact: str = ""
    email: str = ""
    # True: same parent organisation, so we forward the mail to `email` ourselves.
    forward: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, email: str) -> str:
        if email and "@" not in email:
            raise ValueError("not an email address")
        return email.strip().lower()


class ChannelRule(_Rule):
    """A request type the agency has declared must go through another channel."""

    name_th: str
    name_en: str = ""
    correct_channel: str


class SpamRule(_Rule):
    reason: str = ""
    from_patterns: tuple[str, ...] = ()
    # How many different keywords must appear: 2 keeps a citizen's complaint about,
    # say, a gambling website from being thrown away for one word.
    min_matches: int = Field(default=1, ge=1)


class HighRiskRule(_Rule):
    """A high-risk request type of seed 000 step 3: identity must be proven first."""

    name_th: str = ""
    name_en: str = ""


class _StateDomains(BaseModel):
    """rules/state_domains.toml: the senders whose mail is an official letter."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    @field_validator("domains")
    @classmethod
    def _domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(d.strip().lower().lstrip("*.").rstrip(".") for d in domains)
        for domain in cleaned:
            if not domain or "@" in domain or " " in domain or "." not in domain:
                raise ValueError(f"'{domain}' is not a domain (e.g. go.th or dga.or.th)")
        return cleaned

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, addresses: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(a.strip().lower() for a in addresses)
        for address in cleaned:
            if address.count("@") != 1 or " " in address:
                raise ValueError(f"'{address}' is not an email address")
        return cleaned


class _Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: dt.date
    name: str = ""


# Seed 000 step 3: the five high-risk request types, as its flowchart lists them. Always on;
# rules/high_risk.toml may add keywords to these ids or add rules of its own. Seed 002
# (initial tier §3.4) also names "การขอสิทธิใด ๆ ตามกฎหมาย" (claiming a right): not built in,
# since every welfare claim (ขอรับสิทธิเบี้ยยังชีพ) would then wait for identity proofing; the
# shipped rules/high_risk.toml shows, commented out, how an agency adds it.
BUILTIN_HIGH_RISK: tuple[HighRiskRule, ...] = (
    HighRiskRule(
        id="personal_data_disclosure",
        name_th="การขอให้เปิดเผยข้อมูลส่วนบุคคล",
        name_en="disclosure of personal data",
        keywords=("เปิดเผยข้อมูลส่วนบุคคล", "ขอสำเนาข้อมูลส่วนบุคคล", "ขอข้อมูลส่วนบุคคล",
                  "disclose my personal data", "disclosure of personal data",
                  "copy of my personal data"),
    ),
    HighRiskRule(
        id="legal_right",  # การขอสละสิทธิ (waiving) and การปฏิเสธสิทธิ (refusing) a right
        name_th="การขอสละสิทธิหรือการปฏิเสธสิทธิใด ๆ ตามกฎหมาย",
        name_en="waiving or refusing a legal right",
        keywords=("สละสิทธิ", "ปฏิเสธสิทธิ", "waive my right", "waiver of", "renounce",
                  "refuse my right"),
    ),
    HighRiskRule(
        id="permit_cancellation",
        name_th="การยกเลิกการขออนุญาตหรือขอเพิกถอนการจดทะเบียน",
        name_en="cancelling a permit application or revoking a registration",
        keywords=("ยกเลิกการขออนุญาต", "ยกเลิกใบอนุญาต", "เพิกถอนการจดทะเบียน",
                  "ขอเพิกถอน", "revoke my registration", "revocation of",
                  "cancel my permit", "cancel the permit"),
    ),
    HighRiskRule(
        id="complaint_withdrawal",
        name_th="การถอนเรื่องร้องทุกข์หรือร้องเรียน",
        name_en="withdrawing a complaint",
        keywords=("ถอนเรื่องร้องเรียน", "ถอนเรื่องร้องทุกข์", "ถอนคำร้องเรียน",
                  "ถอนการร้องเรียน", "withdraw my complaint", "withdraw the complaint"),
    ),
    HighRiskRule(
        id="request_cancellation",
        name_th="การยกเลิกคำร้องคำขอที่ได้ยื่นไปแล้ว",
        name_en="cancelling a request already filed",
        keywords=("ยกเลิกคำร้อง", "ยกเลิกคำขอ", "cancel my request", "cancel the request",
                  "cancel my application", "withdraw my application"),
    ),
)


@dataclass(frozen=True)
class RuleSet:
    agencies: tuple[AgencyRule, ...] = ()
    channels: tuple[ChannelRule, ...] = ()
    spam: tuple[SpamRule, ...] = ()
    high_risk: tuple[HighRiskRule, ...] = BUILTIN_HIGH_RISK
    holidays_added: dict[dt.date, str] = field(default_factory=dict)
    holidays_removed: frozenset[dt.date] = frozenset()
    state: StateSenders = StateSenders()
    units: Units = Units()


def _read(folder: Path, name: str, fallback: bool = True) -> tuple[Path, dict]:
    path = folder / name
    if not path.is_file() and fallback:
        path = default_dir("rules") / name
    if not path.is_file():
        return path, {}
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None


def _tables(path: Path, data: dict, key: str, model: type[BaseModel]) -> tuple:
    unknown = sorted(set(data) - {key})
    if unknown:
        raise RulesError(f"{path}: unknown key '{unknown[0]}' (expected [[{key}]] tables)")
    items = []
    for index, table in enumerate(data.get(key, [])):
        try:
            items.append(model.model_validate(table))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(table)"
            ident = table.get("id", "?") if isinstance(table, dict) else "?"
            raise RulesError(
                f"{path}: [[{key}]] #{index + 1} (id={ident}): {where}: {first['msg']}"
            ) from None
    ids = [getattr(item, "id", None) for item in items]
    duplicates = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if duplicates:
        raise RulesError(f"{path}: id '{duplicates[0]}' is used twice")
    return tuple(items)


def _merge_high_risk(extra: tuple[HighRiskRule, ...]) -> tuple[HighRiskRule, ...]:
    merged = {rule.id: rule for rule in BUILTIN_HIGH_RISK}
    for rule in extra:
        base = merged.get(rule.id)
        if base is None:
            merged[rule.id] = rule
        else:
            merged[rule.id] = base.model_copy(
                update={"keywords": base.keywords + rule.keywords}
            )
    return tuple(merged.values())


def load_rules(folder: Path) -> RuleSet:
    agencies = _tables(*_read(folder, "agencies.toml"), "agency", AgencyRule)
    channels = _tables(*_read(folder, "channels.toml"), "channel", ChannelRule)
    spam = _tables(*_read(folder, "spam.toml"), "rule", SpamRule)
    high_risk = _tables(*_read(folder, "high_risk.toml"), "rule", HighRiskRule)
    path, data = _read(folder, "holidays.toml")
    unknown = sorted(set(data) - {"add", "remove"})
    if unknown:
        raise RulesError(f"{path}: unknown key '{unknown[0]}' (expected [[add]] or [[remove]])")
    added = _tables(path, {"add": data.get("add", [])}, "add", _Holiday)
    removed = _tables(path, {"remove": data.get("remove", [])}, "remove", _Holiday)
    state = _state_senders(*_read(folder, "state_domains.toml"))
    # No shipped fallback here: the example's units and addresses are another agency's, and
    # requests must not be forwarded to them. Without the file nothing is routed.
    units = _units(*_read(folder, "units.toml", fallback=False))
    ids = [r.id for r in agencies] + [r.id for r in channels] + [r.id for r in spam]
    clash = sorted({i for i in ids if ids.count(i) > 1})
    if clash:
        raise RulesError(f"{folder}: rule id '{clash[0]}' is used in two files")
    return RuleSet(
        agencies=agencies,
        channels=channels,
        spam=spam,
        high_risk=_merge_high_risk(high_risk),
        holidays_added={h.date: h.name for h in added},
        holidays_removed=frozenset(h.date for h in removed),
        state=state,
        units=units,
    )


def _units(path: Path, data: dict) -> Units:
    unknown = sorted(set(data) - {"unit", "service"})
    if unknown:
        raise RulesError(f"{path}: unknown key '{unknown[0]}' (expected [[unit]] or [[service]])")
    units = Units(_tables(path, {"unit": data.get("unit", [])}, "unit", Unit),
                  _tables(path, {"service": data.get("service", [])}, "service", Service))
    for problem in units.problems():
        raise RulesError(f"{path}: {problem}")
    return units


def _state_senders(path: Path, data: dict) -> StateSenders:
    try:
        read = _StateDomains.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise RulesError(f"{path}: {where}: {first['msg']}") from None
    return StateSenders(read.domains, frozenset(read.addresses))
