"""Setting up an installation: `install-service` (the systemd unit for this config) and
`auth` (the one-time OAuth2 consent, for the saraban mailbox or a watched one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from saraban_mail import oauth
from saraban_mail.cli.exits import EXIT_OK
from saraban_mail.config import Config, config_path, load_config
from saraban_mail.errors import SarabanError
from saraban_mail.service import now, open_mailbox, tokens_for

UNIT = """[Unit]
Description=saraban-mail: the agency's central mailbox (saraban@)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
Environment=SARABAN_CONFIG={config}
ExecStart={executable} run
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=30
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={writable}
PrivateTmp=yes
ProtectHome={protect_home}
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
UMask=0077

[Install]
WantedBy=multi-user.target
"""


def cmd_auth(args: argparse.Namespace) -> int:
    """The one-time OAuth2 consent (device code), then a test login."""
    config = load_config(args.config)
    if args.watch:
        return _auth_watch(config, args.watch)
    if not config.uses_oauth:
        raise SarabanError("imap.auth and smtp.auth are both 'password': no OAuth2 to set up")
    oauth.device_login(config.oauth, config.paths.data_dir, print, now)
    print(f"token kept in {config.paths.data_dir / oauth.TOKEN_FILE}")
    if config.imap.auth != "password" and config.mailbox.backend == "imap":
        open_mailbox(config, tokens_for(config), retry=False).close()
        print(f"IMAP login ok: {config.imap.username}")
    return EXIT_OK


def _auth_watch(config: Config, name: str) -> int:
    from saraban_mail.mailbox import WatchedMailbox

    watch = next((w for w in config.watch if w.name == name), None)
    if watch is None:
        raise SarabanError(f"no [[watch]] entry is named '{name}'")
    if watch.auth == "password":
        raise SarabanError(f"watch '{name}' logs in with a password: no OAuth2 to set up")
    file = oauth.watch_token_file(name)
    oauth.device_login(config.oauth, config.paths.data_dir, print, now, file=file)
    print(f"token kept in {config.paths.data_dir / file}")
    WatchedMailbox(watch, oauth.watch_tokens(config, watch, now)).close()
    print(f"IMAP login ok: {watch.username}")
    return EXIT_OK


def cmd_install_service(args: argparse.Namespace) -> int:
    """Write the systemd unit for this installation and this config file."""
    import shutil

    config = load_config(args.config)
    source = config_path(args.config).absolute()
    executable = shutil.which("saraban-mail") or f"{sys.executable} -m saraban_mail"
    writable = sorted({str(config.paths.data_dir), str(config.paths.register_dir),
                       str(config.results.outbox_dir)})
    protect_home = "read-only" if any(w.startswith("/home/") for w in writable) else "yes"
    unit = UNIT.format(user=args.user, config=source, executable=executable,
                       writable=" ".join(writable), protect_home=protect_home)
    out = Path(args.out)
    out.write_text(unit, encoding="utf-8")
    print(f"{out} written; then: systemctl daemon-reload && systemctl enable --now {out.stem}")
    return EXIT_OK
