"""saraban-mail: the mechanical work of a Thai agency's central mailbox (saraban@).

Fetch, classify, register, acknowledge; see README.md for the flow."""

__version__ = "0.1.0"
