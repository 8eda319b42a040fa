"""A small OAuth2 authorization server on loopback, for the OAuth2 login tests.

Device authorization (RFC 8628), the refresh grant (RFC 6749 §6) with rotating refresh
tokens, and token introspection (RFC 7662) that Dovecot's oauth2 passdb and the test SMTP
server ask. The device code is "approved" at the second poll of the token endpoint."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class AuthServer:
    user: str
    lifetime: int = 3600
    access: dict[str, float] = field(default_factory=dict)  # token -> expires (monotonic)
    refresh: set[str] = field(default_factory=set)
    grants: list[str] = field(default_factory=list)  # grant types asked for, in order
    introspected: int = 0
    device_polls: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def active(self, token: str) -> bool:
        return self.access.get(token, 0) > time.monotonic()

    def issue(self, with_refresh: bool = True) -> dict[str, object]:
        token = "at-" + secrets.token_hex(8)
        self.access[token] = time.monotonic() + self.lifetime
        reply: dict[str, object] = {"access_token": token, "token_type": "Bearer",
                                    "expires_in": self.lifetime}
        if with_refresh:
            rt = "rt-" + secrets.token_hex(8)
            self.refresh.add(rt)
            reply["refresh_token"] = rt
        return reply

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if path == "/device":
            return 200, {"device_code": "dev-1", "user_code": "ABCD-EFGH",
                         "verification_uri": f"{self.url}/activate", "interval": 0,
                         "expires_in": 60}
        if path == "/introspect":
            self.introspected += 1
            token = form.get("token", "")
            return 200, ({"active": True, "username": self.user} if self.active(token)
                         else {"active": False})
        if path != "/token":
            return 404, {"error": "not_found"}
        grant = form.get("grant_type", "")
        self.grants.append(grant)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            self.device_polls += 1
            if self.device_polls < 2:
                return 400, {"error": "authorization_pending"}
            return 200, self.issue()
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            if old not in self.refresh:
                return 400, {"error": "invalid_grant", "error_description": "token revoked"}
            self.refresh.discard(old)  # rotated
            return 200, self.issue()
        return 400, {"error": "unsupported_grant_type"}

    def start(self) -> AuthServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
                code, reply = owner.answer(self.path, form)
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
