"""OAuth2 login for mailboxes that take no password (Microsoft 365, Google Workspace).

One consent with `saraban-mail auth` (the device flow of RFC 8628: a code typed into a
browser anywhere) gives a refresh token; every login then takes a fresh access token from
it (RFC 6749 §6). The tokens live in data/oauth-token.json, readable by the service user
only, with what `status` and `check` need to warn in time: when the refresh token was
issued and since when login fails."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from saraban_mail.config import Config, OAuth, Watch
from saraban_mail.errors import LoginRefused, MailboxError
from saraban_mail.files import private_dir

TOKEN_FILE = "oauth-token.json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EARLY = timedelta(seconds=60)  # an access token this close to its end is renewed first


class Refused(LoginRefused):
    """The token endpoint answered with an OAuth2 error (RFC 6749 §5.2)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}" if text else code)
        self.code = code


def watch_token_file(name: str) -> str:
    """A watched mailbox's own tokens (`saraban-mail auth --watch NAME`)."""
    return f"oauth-token-{name}.json"


def watch_tokens(config: Config, watch: Watch, clock: Callable[[], datetime]) -> Tokens | None:
    """The tokens of a watched mailbox that logs in with OAuth2 (None for a password)."""
    if watch.auth == "password":
        return None
    return Tokens(config.oauth, config.paths.data_dir, clock, watch_token_file(watch.name))


class TokenStore:
    def __init__(self, data_dir: Path, file: str = TOKEN_FILE) -> None:
        self.path = data_dir / file

    def load(self) -> dict[str, Any]:
        try:
            found = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise MailboxError(f"cannot read {self.path}: {exc}") from exc
        return found if isinstance(found, dict) else {}

    def save(self, tokens: dict[str, Any]) -> None:
        private_dir(self.path.parent)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".oauth-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
            json.dump(tokens, out, indent=1)
        os.replace(temp, self.path)


def _post(url: str, fields: dict[str, str], timeout: float = 30.0) -> dict[str, Any]:
    import urllib.error  # only where a token is fetched: `status` starts without it
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode({k: v for k, v in fields.items() if v}).encode()
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("error"):
            raise Refused(str(body["error"]), str(body.get("error_description", ""))) from None
        raise MailboxError(f"OAuth2 endpoint {url} answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise MailboxError(f"cannot reach the OAuth2 endpoint {url}: {exc}") from exc


def _client(settings: OAuth) -> dict[str, str]:
    return {"client_id": settings.client_id, "client_secret": settings.secret()}


class Tokens:
    """Gives a valid access token, renewing it from the refresh token when due."""

    def __init__(self, settings: OAuth, data_dir: Path, clock: Callable[[], datetime],
                 file: str = TOKEN_FILE) -> None:
        if not settings.token_url or not settings.client_id:
            raise MailboxError("OAuth2 login needs oauth.token_url and oauth.client_id")
        self.settings, self.store, self.clock = settings, TokenStore(data_dir, file), clock

    def access_token(self, fresh: bool = False) -> str:
        tokens = self.store.load()
        if not tokens.get("refresh_token"):
            raise LoginRefused("no OAuth2 token yet: run `saraban-mail auth` once")
        now = self.clock()
        expires = tokens.get("expires_at")
        if not fresh and tokens.get("access_token") and expires and (
            datetime.fromisoformat(expires) - EARLY > now
        ):
            return str(tokens["access_token"])
        try:
            reply = _post(self.settings.token_url, {
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                "scope": self.settings.scope, **_client(self.settings),
            })
        except Refused as exc:
            self.failed(f"the refresh token was refused ({exc}): run `saraban-mail auth` again")
            raise LoginRefused(f"OAuth2 refresh refused ({exc}): run `saraban-mail auth` again") from None
        _take(tokens, reply, now)
        self.store.save(tokens)
        return str(tokens["access_token"])

    def failed(self, error: str) -> None:
        tokens = self.store.load()
        if tokens:
            tokens.setdefault("failing_since", self.clock().isoformat())
            tokens["last_error"] = error
            self.store.save(tokens)

    def succeeded(self) -> None:
        tokens = self.store.load()
        if tokens.pop("failing_since", None) is not None:
            tokens.pop("last_error", None)
            self.store.save(tokens)


def _take(tokens: dict[str, Any], reply: dict[str, Any], now: datetime) -> None:
    if not reply.get("access_token"):
        raise MailboxError("the OAuth2 token endpoint sent no access token")
    tokens["access_token"] = reply["access_token"]
    tokens["expires_at"] = (now + timedelta(seconds=int(reply.get("expires_in", 3600)))).isoformat()
    if reply.get("refresh_token"):  # rotated: the new one lives another full term
        tokens["refresh_token"] = reply["refresh_token"]
        tokens["refresh_issued_at"] = now.isoformat()


def device_login(settings: OAuth, data_dir: Path, say: Callable[[str], None],
                 clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep,
                 file: str = TOKEN_FILE) -> None:
    """The one-time consent: show the code, wait until someone enters it, keep the tokens."""
    if not settings.device_url or not settings.token_url or not settings.client_id:
        raise MailboxError("`saraban-mail auth` needs oauth.device_url, oauth.token_url and "
                           "oauth.client_id")
    start = _post(settings.device_url, {"scope": settings.scope, **_client(settings)})
    for key in ("device_code", "user_code"):
        if key not in start:
            raise MailboxError(f"the device endpoint sent no {key}")
    uri = start.get("verification_uri") or start.get("verification_url", "")
    say(str(start.get("message") or f"open {uri} and enter the code {start['user_code']}"))
    interval = float(start.get("interval", 5))
    deadline = clock() + timedelta(seconds=int(start.get("expires_in", 900)))
    while clock() < deadline:
        sleep(interval)
        try:
            reply = _post(settings.token_url, {"grant_type": DEVICE_GRANT,
                                               "device_code": start["device_code"],
                                               **_client(settings)})
        except Refused as exc:
            if exc.code == "authorization_pending":
                continue
            if exc.code == "slow_down":
                interval += 5
                continue
            raise
        if not reply.get("refresh_token"):
            raise MailboxError("no refresh token was issued: add offline_access to oauth.scope")
        tokens: dict[str, Any] = {}
        _take(tokens, reply, clock())
        TokenStore(data_dir, file).save(tokens)
        return
    raise LoginRefused("the code was not entered in time; run `saraban-mail auth` again")


def warnings(config: Config, now: datetime) -> list[str]:
    """What an administrator must do before mail stops: for `status`, `check` and email."""
    if not config.uses_oauth:
        return []
    tokens = TokenStore(config.paths.data_dir).load()
    if not tokens.get("refresh_token"):
        return ["no OAuth2 token yet: run `saraban-mail auth`"]
    found = []
    issued = tokens.get("refresh_issued_at")
    if issued:
        ends = datetime.fromisoformat(issued) + timedelta(days=config.oauth.refresh_token_days)
        if ends - timedelta(days=config.oauth.warn_days) <= now:
            found.append(f"the OAuth2 refresh token expires about {ends:%Y-%m-%d}: "
                         "run `saraban-mail auth` before then")
    if tokens.get("failing_since"):
        found.append(f"OAuth2 login failing since {tokens['failing_since'][:16]}: "
                     f"{tokens.get('last_error', '')}")
    return found
