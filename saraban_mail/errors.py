"""Errors a user can cause: each is reported as one clear line, never a traceback.

Programming errors are not wrapped here; they crash loudly in tests."""


class SarabanError(Exception):
    """Base of every error the command line reports as one line."""


class ConfigError(SarabanError):
    """The configuration file or an environment override is invalid."""


class RulesError(SarabanError):
    """A file in rules/ is invalid (the message names the file and key)."""


class TemplateError(SarabanError):
    """A reply template is missing or does not render."""


class MailboxError(SarabanError):
    """The mailbox could not be reached, logged in to or changed."""


class LoginRefused(MailboxError):
    """The IMAP server refused the username or password."""


class JournalError(SarabanError):
    """The journal (data folder) cannot be opened or written: read-only, full, damaged."""


class SendError(SarabanError):
    """A message could not be handed to the SMTP server or pickup folder."""


class SendLoginRefused(SendError):
    """The SMTP server refused the login (password or OAuth2 token)."""


class RegisterError(SarabanError):
    """The register workbook could not be read or written."""


class RegisterBusy(RegisterError):
    """The workbook is open in a spreadsheet program; rows stay pending."""
