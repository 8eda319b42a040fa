"""The review queue: mail the service could not decide (needs_review) and the five decisions
a clerk takes on it, typed in คำสั่ง of register/review-YEAR.xlsx or given on the command line.

Pure: what an instruction means and whether it can be taken, and the Thai a clerk reads;
carrying it out is the poll's (poll/reviewing.py)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from saraban_mail.errors import SarabanError
from saraban_mail.rules import AgencyRule, ChannelRule, RuleSet

REGISTER, WRONG_AGENCY, WRONG_CHANNEL, SPAM, NO_ACTION = (
    "register", "wrong_agency", "wrong_channel", "spam", "no_action")
# What the clerk types, as the issue and the title row of the sheet say it.
WORDS = {"ลงรับ": REGISTER, "ผิดหน่วยงาน": WRONG_AGENCY, "ผิดช่องทาง": WRONG_CHANNEL, "สแปม": SPAM,
         "ไม่ต้องดำเนินการ": NO_ACTION}
THAI = {decision: word for word, decision in WORDS.items()}
ARGUMENT = {WRONG_AGENCY: "รหัสหน่วยงาน", WRONG_CHANNEL: "รหัสช่องทาง", NO_ACTION: "เหตุผล"}
HOW = ("ลงรับ | ผิดหน่วยงาน: <รหัสหน่วยงาน> | ผิดช่องทาง: <รหัสช่องทาง> | สแปม | "
       "ไม่ต้องดำเนินการ: <เหตุผล>")

# Why the service left a mail to a person, as a clerk reads it (by the rule's id).
WHY = {
    "no_sender": "ไม่มีที่อยู่อีเมลผู้ส่งที่ตอบกลับได้",
    "reply_to_self": "ที่อยู่สำหรับตอบกลับเป็นอีเมลของหน่วยงานเอง",
    "rule_conflict": "เข้าได้กับกฎมากกว่าหนึ่งข้อ",
    "parse_error": "ระบบอ่านเนื้อหาอีเมลไม่ได้",
    "too_large": "อีเมลใหญ่เกินกว่าที่ระบบอ่าน ให้เปิดอ่านในโปรแกรมอีเมล",
    "internal_error": "ระบบขัดข้องขณะอ่านอีเมลนี้",
    "state_bulk": "อีเมลที่หน่วยงานของรัฐส่งถึงผู้รับหลายราย ไม่มีเลขที่หนังสือหรือไฟล์ PDF "
                  "(อาจเป็นจดหมายข่าว): ตรวจว่าเป็นหนังสือราชการที่ต้องลงรับหรือไม่",
}


Named = TypeVar("Named", AgencyRule, ChannelRule)


class ReviewError(SarabanError):
    """An instruction that cannot be taken; the message is Thai, for the clerk."""


@dataclass(frozen=True)
class Verdict:
    """A clerk's decision on one mail in the review queue."""

    decision: str  # REGISTER | WRONG_AGENCY | WRONG_CHANNEL | SPAM | NO_ACTION
    argument: str = ""  # the agency's or channel's id, or the reason


def why(rule: str, reason: str) -> str:
    """Thai first where the rule is known; the service's own words in brackets."""
    return f"{WHY[rule]} ({reason})" if rule in WHY and reason else WHY.get(rule, reason)


def read_instruction(text: str, rules: RuleSet) -> Verdict | None:
    """The decision typed in a คำสั่ง cell; None when the cell is empty."""
    text = " ".join(unicodedata.normalize("NFC", text or "").split())
    if not text:
        return None
    word, argument = _split(text)
    decision = WORDS.get(word.replace(" ", ""))
    if decision is None:
        raise ReviewError(f"ไม่รู้จักคำสั่ง '{word}': พิมพ์ {HOW}")
    return check(Verdict(decision, argument), rules)


def _split(text: str) -> tuple[str, str]:
    """"ผิดหน่วยงาน: pea" → ("ผิดหน่วยงาน", "pea"); a full-width colon is a colon too."""
    match = re.match(r"^(.*?)\s*[:：]\s*(.*)$", text)
    return (match.group(1).strip(), match.group(2).strip()) if match else (text, "")


def check(verdict: Verdict, rules: RuleSet) -> Verdict:
    """The decision as it will be carried out: the agency or channel named must exist
    (by id, or by its Thai name as a clerk may type it)."""
    decision, argument = verdict.decision, verdict.argument.strip()
    if decision in ARGUMENT and not argument:
        raise ReviewError(f"{THAI[decision]}: ต้องระบุ{ARGUMENT[decision]} เช่น "
                          f"'{THAI[decision]}: {_example(decision, rules)}'")
    if decision == WRONG_AGENCY:
        return Verdict(decision, agency(argument, rules).id)
    if decision == WRONG_CHANNEL:
        return Verdict(decision, channel(argument, rules).id)
    return Verdict(decision, argument)


def agency(name: str, rules: RuleSet) -> AgencyRule:
    return _named(rules.agencies, name, "หน่วยงาน", "rules/agencies.toml")


def channel(name: str, rules: RuleSet) -> ChannelRule:
    return _named(rules.channels, name, "ช่องทาง", "rules/channels.toml")


def _named(found: Sequence[Named], name: str, what: str, where: str) -> Named:
    """The rule a clerk named, by its id or its Thai name."""
    for rule in found:
        if name in (rule.id, rule.name_th):
            return rule
    known = ", ".join(rule.id for rule in found) or "ไม่มี"
    raise ReviewError(f"ไม่พบ{what} '{name}' ใน {where} (รหัสที่มี: {known})")


def _example(decision: str, rules: RuleSet) -> str:
    if decision == WRONG_AGENCY and rules.agencies:
        return rules.agencies[0].id
    if decision == WRONG_CHANNEL and rules.channels:
        return rules.channels[0].id
    return "เป็นอีเมลแจ้งเพื่อทราบ"
