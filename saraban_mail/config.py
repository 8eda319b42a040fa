"""Configuration: one TOML file, every key overridable by SARABAN_<SECTION>__<KEY>.

All defaults live here; relative paths resolve against the config file's folder."""

from __future__ import annotations

import os
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, SettingsConfigDict

from saraban_mail.config_text import (
    decode_config,
    did_you_mean,
    for_people,
    gregorian_date,
    read_secret,
    where,
)
from saraban_mail.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Agency(_Section):
    name_th: str = "หน่วยงานตัวอย่าง"
    name_en: str = "Example Agency"
    phone: str = "0 0000 0000"
    # เบอร์งานสารบรรณ: the saraban unit's own number, when it differs from the agency's.
    saraban_phone: str = ""
    email: str = "saraban@example.go.th"
    website: str = ""
    # The mail administrator: told by email, at most once a day, of what needs a person
    # (login failing, the OAuth2 token near its end).
    admin_email: str = ""
    # ผู้รับผิดชอบข้อมูลส่วนบุคคล: the person answerable for the personal data kept
    # [seed 004 §2 ข้อ ๕, seed 002 init §1.8]; shown by `status`.
    data_custodian: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2] or "localhost"


class MailboxSection(_Section):
    backend: Literal["imap", "maildir"] = "imap"
    maildir: Path = Path("maildir")


Auth = Literal["password", "xoauth2", "oauthbearer"]


def _loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(_Section):
    """What IMAP and SMTP share: refuse to send a password in the clear over a network."""

    host: str = ""
    security: Literal["tls", "starttls", "plain"] = "tls"
    # Plain (unencrypted) connections are refused to anything but this computer unless set.
    allow_plaintext: bool = False

    @model_validator(mode="after")
    def _encrypted_unless_loopback(self):
        if self.security == "plain" and not self.allow_plaintext and not _loopback(self.host):
            raise ValueError(f"security = \"plain\" would send the password unencrypted to "
                             f"{self.host}: use tls or starttls (or set allow_plaintext = true)")
        return self


class Imap(_Server):
    host: str = "imap.mail.go.th"
    port: int = 993
    security: Literal["tls", "starttls", "plain"] = "tls"
    # password, or OAuth2 (xoauth2 / oauthbearer) with the token of `saraban-mail auth`.
    auth: Auth = "password"
    username: str = ""
    password: str = ""
    password_file: Path | None = None
    inbox: str = "INBOX"
    # Empty: found by SPECIAL-USE flag, then by the usual names.
    junk: str = ""
    trash: str = ""
    sent: str = ""
    # Other folders where mail can arrive (a server filter's), read like INBOX [004 App.3 §2].
    extra_folders: list[str] = []
    timeout: float = 60.0
    ca_file: Path | None = None

    def secret(self) -> str:
        return read_secret(self.password, self.password_file, "imap.password_file",
                       "SARABAN_IMAP__PASSWORD")


class Smtp(_Server):
    transport: Literal["smtp", "pickup"] = "smtp"
    host: str = "smtp.mail.go.th"
    port: int = 25
    security: Literal["tls", "starttls", "plain"] = "starttls"
    auth: Auth = "password"
    username: str = ""
    password: str = ""
    password_file: Path | None = None
    pickup_dir: Path = Path("outbox-mail")
    timeout: float = 60.0
    ca_file: Path | None = None

    def secret(self) -> str:
        return read_secret(self.password, self.password_file, "smtp.password_file (the SMTP login)",
                       "SARABAN_SMTP__PASSWORD")


class Network(_Section):
    # Seconds to wait before each new try when a server cannot be reached or the
    # connection drops during a poll; after the last, the work waits for the next poll.
    retry_delays: list[float] = Field(default_factory=lambda: [5.0, 30.0, 120.0])


class OAuth(_Section):
    """OAuth2 for mailboxes that take no password (Microsoft 365, Google Workspace)."""

    token_url: str = ""
    # Device authorization endpoint (RFC 8628), for the one-time consent of `saraban-mail auth`.
    device_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    client_secret_file: Path | None = None
    scope: str = ""
    # A refresh token unused (not renewed) this long stops working: 90 days at Microsoft 365.
    refresh_token_days: int = Field(default=90, ge=1)
    warn_days: int = Field(default=14, ge=0)

    def secret(self) -> str:
        return read_secret(self.client_secret, self.client_secret_file, "oauth.client_secret_file",
                       "SARABAN_OAUTH__CLIENT_SECRET")


class OfficeHours(_Section):
    open: time = time(8, 30)
    close: time = time(16, 30)
    # Acknowledgement deadline for mail that arrived out of hours [seed 004 App.3 §6].
    ack_by: time = time(10, 0)
    timezone: str = "Asia/Bangkok"

    @field_validator("close")
    @classmethod
    def _close_after_open(cls, close: time, info) -> time:
        opening = info.data.get("open")
        if opening is not None and close <= opening:
            raise ValueError("closing time must be after opening time")
        return close


class Schedule(_Section):
    # Empty: check INBOX and Junk at opening and this many minutes before closing
    # ("ก่อนเลิกงาน", seed 004 App.3 §2; SPEC §3).
    times: list[time] = Field(default_factory=list)
    before_closing_minutes: int = Field(default=30, ge=0)
    interval_minutes: int = 0
    # Between the checks `run` watches INBOX (IMAP IDLE) and polls as mail arrives, at any
    # hour: acknowledged at once, while receipt times still follow office hours.
    watch: bool = True
    # Where the server has no IDLE, or the mailbox is a Maildir: look this often instead.
    watch_minutes: float = Field(default=2.0, gt=0)


class Policy(_Section):
    # Mail received before this date is left alone. A Buddhist-era year is converted.
    # Unset: the first poll of a new journal takes its own day and keeps it in the journal
    # (meta `start_date`), so a mailbox with years of history is not acknowledged.
    start_date: date | None = None
    spam_action: Literal["trash", "delete"] = "trash"
    max_replies_per_sender_per_day: int = Field(default=5, ge=0)
    # A message larger than this is not downloaded: its header is, and it is flagged for a
    # clerk to read in the mail program (memory stays bounded: see tests/RELIABILITY.md).
    max_message_mb: float = Field(default=40.0, gt=0)
    # Spam the service itself moved to Trash is deleted from there after this many days.
    trash_days: int = Field(default=30, ge=1)

    _be_start = field_validator("start_date", mode="before")(classmethod(
        lambda cls, value: gregorian_date(value)))


class Replies(_Section):
    processing_time_th: str = "ภายใน 15 วันทำการ นับแต่วันที่ได้รับเรื่องและเอกสารครบถ้วน"
    processing_time_en: str = (
        "within 15 working days of receiving the request and all required documents"
    )


class Registers(_Section):
    date_style: Literal["thai_digits", "arabic"] = "arabic"
    # A Thai font installed with Windows' Thai support; LibreOffice substitutes its own.
    font: str = "TH Sarabun New"
    font_size: int = Field(default=14, ge=8, le=28)
    backups: int = Field(default=10, ge=0)
    # A lock file older than this is reported as stale (and still respected).
    stale_lock_hours: float = Field(default=12.0, gt=0)


class Sharing(_Section):
    """The files clerks open (registers, the inquiry log, the disposal list, outbox/, review
    copies): their group and modes, set on every write and kept across every atomic save.
    Its own section since it covers register/ and outbox/ alike; data/ stays private."""

    # The clerks' OS group (the Samba share's `force group`); empty: the group the OS gives
    # (in a setgid folder, the folder's). A group that does not exist is reported by `check`.
    group: str = ""
    file_mode: str = "0660"  # rw for the service and the clerks' group, nothing for others
    folder_mode: str = "2770"  # setgid (2): what anyone creates inside joins the folder's group
    # records/ (each registered mail as it arrived) shared with the clerks' group too.
    records: bool = False

    @field_validator("file_mode", "folder_mode")
    @classmethod
    def _octal(cls, value: str, info) -> str:
        if not value or len(value) > 4 or any(c not in "01234567" for c in value):
            raise ValueError(f"{info.field_name} must be an octal mode such as \"0660\", "
                             f"not {value!r}")
        return value

    @property
    def file_bits(self) -> int:
        return int(self.file_mode, 8)

    @property
    def folder_bits(self) -> int:
        return int(self.folder_mode, 8)


class Results(_Section):
    """Sending results (signed PDFs) back to the citizen."""

    # Drop N-YYYY.pdf (or a folder N-YYYY/) here; sent files move to sent/, refused to failed/.
    outbox_dir: Path = Path("outbox")
    max_total_mb: float = Field(default=10.0, gt=0)
    # A scanned JPEG/PNG may go as it is (it cannot carry a password).
    allow_images: bool = False
    # auto: encrypt with a random password sent in a second mail [seed 004 §8.4].
    password: Literal["auto", "none"] = "none"
    # Requests whose subject has one of these get a password by default, as do
    # high-risk requests for personal data.
    personal_keywords: list[str] = Field(default_factory=lambda: [
        "ข้อมูลส่วนบุคคล", "ทะเบียนบ้าน", "บัตรประจำตัว", "ใบรับรองแพทย์", "personal data",
    ])


class Seal(_Section):
    """The agency's electronic seal (ตราประทับอิเล็กทรอนิกส์) on every result PDF: an
    organisation certificate's PAdES signature with an RFC 3161 timestamp (seed 002 §4.3-4.5)."""

    pkcs12: Path | None = None  # unset: results go unsealed
    # The PKCS#12 password: in the variable named by password_env, else this file; never in
    # the config text (one underscore: SARABAN_SEAL__... would be read as a setting).
    password_file: Path | None = None
    password_env: str = "SARABAN_SEAL_PASSWORD"
    reason: str = "รับรองความถูกต้องของเอกสารที่หน่วยงานส่ง"
    location: str = ""  # empty: the agency's Thai name
    tsa_url: str = ""
    # No reachable TSA: the result waits (true) or is sealed without a timestamp (false).
    require_timestamp: bool = True
    visible_stamp: bool = False
    stamp_font: Path | None = None  # a TrueType font with Thai glyphs for the visible stamp
    # CA certificates (PEM or DER) trusted when checking signatures: `verify`, intake notes.
    trust_roots: list[Path] = Field(default_factory=list)
    warn_days: list[int] = Field(default_factory=lambda: [30, 14, 3])
    timeout: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _stamp_needs_thai_font(self):
        if self.visible_stamp and self.stamp_font is None:
            raise ValueError("seal.visible_stamp needs seal.stamp_font, a TrueType font with Thai "
                             "glyphs (e.g. /usr/share/fonts/truetype/tlwg/Laksaman.ttf)")
        return self

    def secret(self) -> str:
        if self.password_env and os.environ.get(self.password_env):
            return os.environ[self.password_env]
        if self.password_file is None:
            raise ConfigError(f"seal: no password for {self.pkcs12}: set {self.password_env} "
                              "or seal.password_file")
        return read_secret("", self.password_file, "seal.password_file", self.password_env)


class Followup(_Section):
    """What happens after receipt: missing documents, the hold, inquiries."""

    documents_days: int = Field(default=7, ge=1)  # working days to send missing documents
    reminder: bool = True  # one reminder when the document deadline passes
    # A matter waiting on the citizen with no contact this long is proposed for disposal
    # (seed 000: kept 30 days, then proposed to the head of the agency). Calendar days, as
    # the seeds and the templates say ("30 วัน"); true counts working days instead.
    hold_days: int = Field(default=30, ge=1)
    hold_in_working_days: bool = False
    # Requests for information, logged in the inquiry log (seed 004 §1.7).
    inquiry_keywords: list[str] = Field(default_factory=lambda: [
        "สอบถาม", "ขอทราบ", "ขอข้อมูล", "inquiry", "question about",
    ])


class Report(_Section):
    """The head's report (saraban-mail report): the PDF's Thai font, a .ttf file (its bold
    beside it as NAME-Bold.ttf); empty: TH Sarabun New, Sarabun or Laksaman found by fontconfig."""

    font: str = ""


class Notices(_Section):
    """The unit heads' daily list of overdue matters (rules/units.toml: head_email)."""

    heads_daily: bool = False  # opt-in: once a working day, one mail to each unit head
    heads_soon_days: int = Field(default=3, ge=0)  # also list what falls due within these working days


class Quota(_Section):
    """The mailbox's space (IMAP QUOTA): a full box bounces citizens' mail [004 App.5 §1]."""

    warn_percent: list[int] = Field(default_factory=lambda: [80, 90])


class Archive(_Section):
    """Handled mail copied off the server (a Maildir per month), verified, then deleted."""

    dir: Path = Path("archive")
    older_than_months: int = Field(default=12, ge=1)
    # When the quota is used this far (percent), each poll archives; 0: only by the command.
    auto_at_percent: int = Field(default=0, ge=0, le=100)


class Paths(_Section):
    data_dir: Path = Path("data")
    # Each registered mail as it arrived: records/YEAR/rx-NNNN.eml (private unless [sharing]).
    records_dir: Path = Path("records")
    register_dir: Path = Path("register")
    rules_dir: Path = Path("rules")
    templates_dir: Path = Path("templates")


# A period: "30d", "12m", "10y", or "forever" (kept, never purged).
Period = str


class Retention(_Section):
    """How long each kind of record is kept (retention.py decides; README cites the sources).
    The saraban regulation keeps records at least 10 years unless a rule says otherwise
    (ระเบียบฯ งานสารบรรณ ข้อ ๕๗); personal data only as long as needed [seed 004 §2 ข้อ ๔].
    Registers are never purged; passwords are never stored."""

    request_records: Period = "10y"   # records/: each registered mail (.eml)
    attachments: Period = "10y"       # data/attachments/: the files that came with it
    identity_evidence: Period = "30d"  # data/matters/: after the matter closed
    video_call_images: Period = "30d"  # evidence of a video call: after the matter closed
    review_copies: Period = "90d"      # data/review/, register/review/: after the decision
    result_pdfs: Period = "10y"        # outbox/sent/: results as sent
    mail_archive: Period = "10y"       # the mailbox archive (archive.dir)
    logs: Period = "1y"                # logs/ under data/ (journald keeps its own)

    @field_validator("*")
    @classmethod
    def _period(cls, value: str, info) -> str:
        import re

        if not re.fullmatch(r"\d{1,4}[dmy]|forever", value.strip()):
            raise ValueError(f"{info.field_name} must be a period such as \"30d\", \"12m\", "
                             f"\"10y\" or \"forever\", not {value!r}")
        return value.strip()


class Backup(_Section):
    """`saraban-mail backup`: where, and how many of the dated folders to keep."""

    dest: Path | None = None  # unset: no backup after the afternoon poll
    keep_daily: int = Field(default=7, ge=1)
    keep_weekly: int = Field(default=4, ge=0)
    keep_monthly: int = Field(default=12, ge=0)


class Staff(_Section):
    addresses: list[str] = Field(default_factory=list)

    @field_validator("addresses")
    @classmethod
    def _lower(cls, addresses: list[str]) -> list[str]:
        return [a.strip().lower() for a in addresses]


class Watch(Imap):
    """A further mailbox (a staff member's, a retired address of the agency) read for
    citizens' requests that reached it instead of saraban. Read only: the one change the
    service makes there is `keyword` on what it copied."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    # The address citizens wrote to; default: the username when it is an address.
    address: str = ""
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    keyword: str = Field(default="$SarabanCopied", pattern=r"^(\$?[A-Za-z0-9_.-]{1,60})?$")
    # Where the first poll of this mailbox starts: mail from this date, else from
    # `watching.lookback_days` before that poll (never the mailbox's whole history).
    start_date: date | None = None

    _be_start = field_validator("start_date", mode="before")(classmethod(
        lambda cls, value: gregorian_date(value)))

    def secret(self) -> str:
        return read_secret(self.password, self.password_file,
                       f"watch '{self.name}' password_file")

    @property
    def watched_address(self) -> str:
        return (self.address or (self.username if "@" in self.username else "")).strip().lower()


class Watching(_Section):
    """The narrow rule by which mail in a watched mailbox counts as a citizen's request."""

    lookback_days: int = Field(default=3, ge=0)
    # Mail from these domains (and from staff.addresses) is staff mail: never copied.
    # The domain of agency.email is always one of them.
    agency_domains: list[str] = Field(default_factory=list)
    request_keywords: list[str] = Field(default_factory=lambda: [
        "คำขอ", "คำร้อง", "ขออนุญาต", "ขอความอนุเคราะห์", "ขอรับ", "ขอคัด", "ขอสำเนา",
        "ขอข้อมูล", "ขอแจ้ง", "ขอยื่น", "ร้องเรียน", "ร้องทุกข์", "แจ้งเหตุ", "เดือดร้อน",
        "request", "complaint", "application", "petition", "permit",
    ])
    request_types: list[str] = Field(default_factory=lambda: [
        "application/pdf", "image/jpeg", "image/png", "image/tiff", "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ])


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SARABAN_", env_nested_delimiter="__", extra="ignore"
    )

    agency: Agency = Field(default_factory=Agency)
    mailbox: MailboxSection = Field(default_factory=MailboxSection)
    imap: Imap = Field(default_factory=Imap)
    smtp: Smtp = Field(default_factory=Smtp)
    network: Network = Field(default_factory=Network)
    oauth: OAuth = Field(default_factory=OAuth)
    office_hours: OfficeHours = Field(default_factory=OfficeHours)
    schedule: Schedule = Field(default_factory=Schedule)
    policy: Policy = Field(default_factory=Policy)
    replies: Replies = Field(default_factory=Replies)
    registers: Registers = Field(default_factory=Registers)
    sharing: Sharing = Field(default_factory=Sharing)
    results: Results = Field(default_factory=Results)
    seal: Seal = Field(default_factory=Seal)
    followup: Followup = Field(default_factory=Followup)
    report: Report = Field(default_factory=Report)
    notices: Notices = Field(default_factory=Notices)
    paths: Paths = Field(default_factory=Paths)
    quota: Quota = Field(default_factory=Quota)
    archive: Archive = Field(default_factory=Archive)
    retention: Retention = Field(default_factory=Retention)
    backup: Backup = Field(default_factory=Backup)
    staff: Staff = Field(default_factory=Staff)
    watch: list[Watch] = Field(default_factory=list)
    watching: Watching = Field(default_factory=Watching)

    # Set by load_config: the file the settings came from.
    source: Path | None = None

    @model_validator(mode="after")
    def _watch_names_differ(self):
        names = [w.name for w in self.watch]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two [[watch]] entries are named '{twice[0]}'")
        return self

    @property
    def uses_oauth(self) -> bool:
        return self.imap.auth != "password" or (
            self.smtp.transport == "smtp" and self.smtp.auth != "password"
        )


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SARABAN_CONFIG") or "config.toml")


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Read the TOML file, apply SARABAN_* overrides, resolve relative paths. Every
    mistake in the file is reported at once, each as one line a person can act on."""
    path = config_path(explicit).absolute()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration file at {path} (copy config.example.toml to config.toml)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(decode_config(data, path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(Config.model_fields) - {"source"})
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]"
                          + did_you_mean(unknown[0], list(Config.model_fields)))

    class _FromFile(Config):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, **_):
            # The file as read above (BOM, cp874), under the environment's overrides.
            return (init_settings, env_settings, InitSettingsSource(settings_cls, raw))

    try:
        loaded = _FromFile()
    except ValidationError as exc:
        lines = [f"{where(error['loc'])}: {for_people(error, Config)}" for error in exc.errors()]
        if len(lines) == 1:
            raise ConfigError(f"{path}: {lines[0]}") from None
        raise ConfigError(f"{path}: {len(lines)} settings to fix:\n  "
                          + "\n  ".join(lines)) from None
    config = Config.model_validate(loaded.model_dump())
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: Config, base: Path) -> Config:
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    paths = config.paths.model_copy(
        update={name: absolute(getattr(config.paths, name)) for name in Paths.model_fields}
    )
    mailbox = config.mailbox.model_copy(update={"maildir": absolute(config.mailbox.maildir)})
    smtp = config.smtp.model_copy(update={"pickup_dir": absolute(config.smtp.pickup_dir)})
    results = config.results.model_copy(update={"outbox_dir": absolute(config.results.outbox_dir)})
    seal = config.seal.model_copy(update={
        name: absolute(getattr(config.seal, name)) for name in ("pkcs12", "password_file",
                                                                "stamp_font")
        if getattr(config.seal, name) is not None
    } | {"trust_roots": [absolute(p) for p in config.seal.trust_roots]})
    archive = config.archive.model_copy(update={"dir": absolute(config.archive.dir)})
    backup = config.backup.model_copy(
        update={"dest": absolute(config.backup.dest) if config.backup.dest else None})
    return config.model_copy(
        update={"paths": paths, "mailbox": mailbox, "smtp": smtp, "results": results,
                "seal": seal, "archive": archive, "backup": backup, "source": base}
    )
