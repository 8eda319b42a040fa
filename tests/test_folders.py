"""Finding Junk, Trash and Sent on servers that are not Dovecot: by SPECIAL-USE flag, else
by the usual names within the personal namespace; and saying so when one is missing."""

from saraban_mail.folders import JUNK_NAMES, SENT_NAMES, TRASH_NAMES, Found, Listed, find, problems


def listing(*names: str, flags: dict[str, str] | None = None, sep: str = "/") -> list[Listed]:
    flags = flags or {}
    return [Listed(n, frozenset({flags[n]} if n in flags else set()), sep) for n in names]


def roles(items: list[Listed], prefix: str = "", sep: str = "/") -> tuple:
    return tuple(find(items, flag, names, "", prefix, sep).name for flag, names in
                 (("\\junk", JUNK_NAMES), ("\\trash", TRASH_NAMES), ("\\sent", SENT_NAMES)))


def test_courier_folders_are_found_within_the_inbox_namespace():
    items = listing("INBOX", "INBOX.Junk", "INBOX.Trash", "INBOX.Sent", "INBOX.Drafts", sep=".")
    assert roles(items, "INBOX.", ".") == ("INBOX.Junk", "INBOX.Trash", "INBOX.Sent")


def test_outlook_names_under_inbox_with_either_separator():
    dotted = listing("INBOX", "INBOX.Junk E-mail", "INBOX.Deleted Items", "INBOX.Sent Items",
                     sep=".")
    assert roles(dotted, "INBOX.", ".") == ("INBOX.Junk E-mail", "INBOX.Deleted Items",
                                            "INBOX.Sent Items")
    # A server whose namespace has no prefix but whose clients made the folders under INBOX.
    slashed = listing("INBOX", "INBOX/Junk", "INBOX/Trash", "INBOX/Sent")
    assert roles(slashed) == ("INBOX/Junk", "INBOX/Trash", "INBOX/Sent")


def test_gmail_and_microsoft_365_names_and_thai_outlook_names():
    gmail = listing("INBOX", "[Gmail]", "[Gmail]/Spam", "[Gmail]/Bin", "[Gmail]/Sent Mail")
    assert roles(gmail) == ("[Gmail]/Spam", "[Gmail]/Bin", "[Gmail]/Sent Mail")
    exchange = listing("Inbox", "Junk Email", "Deleted Items", "Sent Items")
    assert roles(exchange) == ("Junk Email", "Deleted Items", "Sent Items")
    thai = listing("INBOX", "อีเมลขยะ", "รายการที่ถูกลบ", "รายการที่ส่ง")
    assert roles(thai) == ("อีเมลขยะ", "รายการที่ถูกลบ", "รายการที่ส่ง")


def test_a_special_use_flag_wins_over_a_usual_name():
    items = listing("INBOX", "Junk", "Spam2", flags={"Spam2": "\\junk"})
    assert find(items, "\\junk", JUNK_NAMES, "", "", "/") == Found("Spam2", "special-use")
    assert find(items, "\\junk", JUNK_NAMES, "", "", "/").how == "special-use"
    plain = listing("INBOX", "junk")  # names are matched without regard to case
    assert find(plain, "\\junk", JUNK_NAMES, "", "", "/") == Found("junk", "name")


def test_a_configured_name_is_tried_within_the_namespace_and_absent_is_said():
    items = listing("INBOX", "INBOX.Spam", sep=".")
    assert find(items, "\\junk", JUNK_NAMES, "Spam", "INBOX.", ".") == Found("INBOX.Spam",
                                                                             "config")
    assert find(items, "\\junk", JUNK_NAMES, "Nope", "INBOX.", ".") == Found(None, "config")


def test_a_missing_junk_is_a_problem_and_trash_or_sent_only_where_needed():
    none = Found(None)
    lines = problems(none, none, none, spam_to_trash=True, configured={})
    assert len(lines) == 3 and "no junk folder found" in lines[0] and "004 App.3" in lines[0]
    assert problems(Found("Junk"), none, Found(None, "off"), spam_to_trash=False,
                    configured={"sent": "none"}) == []
    named = problems(Found(None, "config"), Found("T"), Found("S"), spam_to_trash=True,
                     configured={"junk": "Nope"})
    assert named == ['imap.junk = "Nope": the server has no such folder: mail in Junk is not '
                     'read, though reading it twice a day is a duty [seed 004 App.3 §2]']
