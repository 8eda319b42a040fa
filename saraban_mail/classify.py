"""Classification: one `Decision` per message, by named rules in a fixed order.

A pure function of the parsed mail, the rules data and who we are; every decision
names its rule and a human reason so it can be explained afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from saraban_mail.category import Category
from saraban_mail.letters import Letter, pdf_first_page, read_letter
from saraban_mail.parse import Forwarded, Incoming
from saraban_mail.rules import AgencyRule, ChannelRule, RuleSet
from saraban_mail.thaitext import fold

__all__ = ["Category", "Decision", "Identity", "classify"]


@dataclass(frozen=True)
class Identity:
    """Who "we" are, for loop protection and staff forwards."""

    own_addresses: frozenset[str]
    staff: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    category: Category
    rule: str
    reason: str
    # Where replies go: Reply-To, else From; the citizen for a staff forward.
    requester: str = ""
    requester_name: str = ""
    high_risk: bool = False
    high_risk_rule: str = ""
    agency: AgencyRule | None = None
    channel: ChannelRule | None = None
    # The mail our reply threads to: the citizen's own, for a staff forward.
    thread_id: str = ""
    letter: Letter | None = None  # official_letter: what the letter says of itself


def _header_flag(headers: dict[str, str], name: str) -> str:
    return headers.get(name, "").split(";")[0].strip().lower()


# Auto-responders that set none of the headers above still say so in the subject; only a
# mail that answers another (In-Reply-To/References) is judged by it.
AUTOREPLY_SUBJECT = re.compile(
    r"\s*(?:(?:re|aw|sv|fw|fwd)\s*:\s*)*(?:automatic reply|auto[- ]?reply|auto[- ]?response|"
    r"out of (?:the )?office|autoresponder|ตอบกลับอัตโนมัติ|ตอบอัตโนมัติ)(?![A-Za-z])",
    re.IGNORECASE)


def automated_reason(mail: Incoming) -> tuple[str, str] | None:
    """RFC 3834 and the usual bulk and bounce markers: mail we must never answer."""
    headers = mail.headers
    auto = _header_flag(headers, "auto-submitted")
    if auto and auto != "no":
        return "auto_submitted", f"Auto-Submitted: {auto}"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return "x_autoreply", f"{name} header"
    if "x-auto-response-suppress" in headers:
        return "auto_response_suppress", "X-Auto-Response-Suppress header (automated sender)"
    precedence = _header_flag(headers, "precedence")
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return "precedence", f"Precedence: {precedence}"
    if "list-id" in headers:
        return "mailing_list", "List-Id header (mailing list)"
    if mail.content_type == "multipart/report" or "x-failed-recipients" in headers:
        return "delivery_report", "delivery status notification"
    if mail.references and AUTOREPLY_SUBJECT.match(mail.subject):
        return "autoreply_subject", "an automatic reply (its subject says so) to a mail of ours"
    local = mail.from_addr.partition("@")[0]
    if local in ("mailer-daemon", "postmaster") or (
        not mail.from_addr and headers.get("return-path", "").strip() == "<>"
    ):
        return "bounce_sender", f"sent by {local or 'the null sender'}"
    return None


def never_a_letter(mail: Incoming) -> bool:
    """An answer or a bounce, never a letter even from a state agency: replies (RFC 3834
    auto-replied, X-Autoreply, an automatic reply's subject), delivery reports, the
    mailer-daemon. What is left of `automated_reason` (lists, bulk, auto-generated) is how
    state agencies send circulars and e-saraban notices."""
    headers = mail.headers
    auto = _header_flag(headers, "auto-submitted")
    local = mail.from_addr.partition("@")[0]
    return (
        auto not in ("", "no", "auto-generated")
        or any(name in headers for name in ("x-autoreply", "x-autorespond", "x-failed-recipients"))
        or mail.content_type == "multipart/report"
        or bool(mail.references and AUTOREPLY_SUBJECT.match(mail.subject))
        or local in ("mailer-daemon", "postmaster")
        or (not mail.from_addr and headers.get("return-path", "").strip() == "<>")
    )


# Senders that no person reads: a receipt notice to them is lost, or starts a loop.
SYSTEM_SENDER = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|mailer-daemon|postmaster|bounces?)"
    r"(?:[-_.+].*)?$|noreply|no-reply|donotreply")


def _list_addresses(headers: dict[str, str]) -> set[str]:
    """The list's own addresses: List-Post's mailto, and the List-Id read as an address."""
    found = set(re.findall(r"mailto:([^>\s?,]+)", headers.get("list-post", ""), re.I))
    list_id = re.search(r"<([^<>\s]+)>", headers.get("list-id", ""))
    if list_id and "." in list_id.group(1):
        local, _, domain = list_id.group(1).partition(".")
        found.add(f"{local}@{domain}")
    return {a.lower() for a in found}


def notice_to(mail: Incoming, us: Identity) -> str:
    """Where a letter's receipt notice (หลักฐานตอบกลับ) may go: the Reply-To, else the From,
    when a person reads it; '' for a system (Auto-Submitted, X-Auto-Response-Suppress), a
    no-reply address or the list the letter came through."""
    auto = _header_flag(mail.headers, "auto-submitted")
    if (auto and auto != "no") or "x-auto-response-suppress" in mail.headers:
        return ""
    lists = _list_addresses(mail.headers)
    for address in (mail.reply_to, mail.from_addr):
        if address and address not in lists and address not in us.own_addresses \
                and not SYSTEM_SENDER.search(address.partition("@")[0]):
            return address
    return ""


def official_letter(mail: Incoming, letter: Letter, us: Identity) -> Decision:
    """A state agency's mail: a letter (registered, a notice to a person who sent it), or
    bulk mail without a document number or PDF (a newsletter), which a clerk judges."""
    requester = notice_to(mail, us)
    bulk = automated_reason(mail)
    if bulk and not letter.is_letter:
        return Decision(Category.NEEDS_REVIEW, "state_bulk",
                        f"{bulk[1]} from a state agency, with no document number or PDF: "
                        "a newsletter, or a letter to register?",
                        requester=requester, requester_name=mail.from_name,
                        thread_id=mail.message_id, letter=letter)
    how = f"document number {letter.doc_no}" if letter.doc_no else (
        "a PDF attached" if letter.has_pdf else "sent by a state agency")
    return Decision(Category.OFFICIAL_LETTER, "official_letter",
                    f"official letter from {mail.from_addr} ({how})"
                    + (f"; {bulk[1]}" if bulk else "")
                    + ("" if requester else "; no receipt notice: no person to send it to"),
                    requester=requester, requester_name=mail.from_name,
                    thread_id=mail.message_id, letter=letter)


def _letter_of(mail: Incoming) -> Letter:
    pdfs = tuple((a.name, pdf_first_page(a.data)) for a in mail.attachments
                 if a.content_type == "application/pdf" or a.name.lower().endswith(".pdf"))
    return read_letter(mail.subject, mail.text, pdfs, sender_name=mail.from_name,
                       sender_domain=mail.from_addr.rpartition("@")[2])


def _spam_header(mail: Incoming) -> bool:
    flag = _header_flag(mail.headers, "x-spam-flag")
    status = mail.headers.get("x-spam-status", "").strip().lower()
    return flag == "yes" or status.startswith("yes")


def _matches(keywords: tuple[str, ...], text: str) -> list[str]:
    return [k for k in keywords if fold(k) in text]


def classify(mail: Incoming, rules: RuleSet, us: Identity) -> Decision:
    """Rules in order; the first that decides wins. Losing a request is the worst
    outcome, so doubtful mail goes to needs_review rather than to Trash."""
    if mail.parse_error:
        return Decision(Category.NEEDS_REVIEW, "parse_error", f"unreadable: {mail.parse_error}")
    if mail.from_addr and mail.from_addr in us.own_addresses:
        return Decision(Category.AUTOMATED, "own_address", "sent from the agency's own address")

    text = fold(f"{mail.subject}\n{mail.text}")
    if _spam_header(mail):
        return Decision(Category.SPAM, "spam_header", "marked as spam by the mail server")
    # Another state agency's letter [seed 002 initial tier §2.1]; a staff member's forward,
    # or mail from our own domain (a colleague), is not.
    own_domains = {a.rpartition("@")[2] for a in us.own_addresses}
    state = (rules.state.includes(mail.from_addr) and mail.from_addr not in us.staff
             and mail.from_addr.rpartition("@")[2] not in own_domains)
    letter = _letter_of(mail) if state else None
    # A numbered letter is not judged by spam words (a circular may warn of gambling sites);
    # an unnumbered one is, as phishing often borrows a go.th sender.
    for rule in () if letter and letter.doc_no else rules.spam:
        hits = _matches(rule.keywords, text)
        if rule.keywords and len(set(hits)) >= rule.min_matches:
            return Decision(Category.SPAM, rule.id, rule.reason or f"spam words: {', '.join(hits)}")
        if mail.from_addr and any(fnmatchcase(mail.from_addr, p.lower()) for p in rule.from_patterns):
            return Decision(Category.SPAM, rule.id, rule.reason or "sender matches a spam pattern")

    if letter is not None and not never_a_letter(mail):
        return official_letter(mail, letter, us)
    automated = automated_reason(mail)
    if automated:
        return Decision(Category.AUTOMATED, *automated)

    requester, name, forwarded = _requester(mail, us)
    if not requester:
        return Decision(Category.NEEDS_REVIEW, "no_sender", "no usable sender address")
    if requester in us.own_addresses:
        return Decision(Category.NEEDS_REVIEW, "reply_to_self", "replies would go to our own address")
    # Every decision from here on has someone to answer.
    base = Decision(Category.VALID, "default", "a request addressed to the agency",
                    requester=requester, requester_name=name,
                    thread_id=forwarded.message_id if forwarded else mail.message_id)

    agencies = [a for a in rules.agencies if _matches(a.keywords, text)]
    channels = [c for c in rules.channels if _matches(c.keywords, text)]
    if len(agencies) > 1 or (agencies and channels):
        ids = ", ".join(r.id for r in [*agencies, *channels])
        return replace(base, category=Category.NEEDS_REVIEW, rule="rule_conflict",
                       reason=f"rules disagree: {ids}")
    if agencies:
        agency = agencies[0]
        category = Category.WRONG_AGENCY_FORWARD if agency.forward and agency.email else (
            Category.WRONG_AGENCY
        )
        return replace(base, category=category, rule=agency.id,
                       reason=f"matter of {agency.name_th}", agency=agency)

    high_risk = next((r for r in rules.high_risk if _matches(r.keywords, text)), None)
    if high_risk is not None:
        base = replace(base, high_risk=True, high_risk_rule=high_risk.id)
    if channels:
        channel = channels[0]
        return replace(base, category=Category.WRONG_CHANNEL, rule=channel.id,
                       reason=f"declared channel: {channel.correct_channel}", channel=channel)
    if forwarded is not None:
        return replace(
            base, category=Category.WRONG_CHANNEL, rule="staff_forward",
            reason=f"forwarded by staff member {mail.from_addr}; "
                   "the citizen wrote to a personal address",
        )
    return base


def _requester(mail: Incoming, us: Identity) -> tuple[str, str, Forwarded | None]:
    """The address our reply goes to, and the citizen's mail a staff member forwarded."""
    if mail.from_addr in us.staff:
        original = next((f for f in mail.forwarded if f.from_addr), None)
        if original is not None:
            return original.reply_to or original.from_addr, original.from_name, original
    return mail.reply_to or mail.from_addr, mail.from_name, None
