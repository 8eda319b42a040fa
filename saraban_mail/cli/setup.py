"""Setting up an installation: `install-service` (the systemd unit for this config, and the
folders it may write) and `auth` (the one-time OAuth2 consent, for saraban or a watched one)."""

from __future__ import annotations

import argparse
import os
import stat
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
    # systemd refuses to start a unit whose ReadWritePaths= does not exist: make them first.
    for line in prepare_folders(config, args.user):
        print(line)
    out = Path(args.out)
    out.write_text(unit, encoding="utf-8")
    print(f"{out} written; then: systemctl daemon-reload && systemctl enable --now {out.stem}")
    return EXIT_OK


def prepare_folders(config: Config, user: str) -> list[str]:
    """Create data/ (0700, the service user's), register/ and outbox/ with sent/ and failed/
    (the service user's, the clerks' group, [sharing] folder_mode); set owner, group and mode
    of those that exist. Harmless to repeat. As root it does it all; as another user, what it
    may, and returns the commands root must run for the rest."""
    from saraban_mail.files import group_id, private_dir, shared_dir

    if os.name == "nt":
        return []
    import grp
    import pwd

    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise SarabanError(f"there is no OS user '{user}': create it first "
                           f"(useradd --system --no-create-home {user}), or give --user") from None
    sharing = config.sharing
    gid = group_id(sharing)
    if sharing.group and gid is None:
        raise SarabanError(f"[sharing] group '{sharing.group}' does not exist: create it first "
                           f"(groupadd {sharing.group}; usermod -aG {sharing.group} {user})")
    group = gid if gid is not None else account.pw_gid
    root = os.geteuid() == 0
    outbox = config.results.outbox_dir
    folders = [(config.paths.data_dir, 0o700, account.pw_gid)]
    folders += [(f, sharing.folder_bits, group) for f in (config.paths.register_dir, outbox,
                                                           outbox / "sent", outbox / "failed")]
    lines, todo = [], []
    for folder, mode, owner_group in folders:
        if mode == 0o700:
            private_dir(folder)
        else:
            shared_dir(folder, sharing)
        info = folder.stat()
        right = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
            account.pw_uid, owner_group, mode)
        if not right and root:
            os.chown(folder, account.pw_uid, owner_group)
            os.chmod(folder, mode)  # after chown, which may clear setgid
            right = True
        group_name = grp.getgrgid(owner_group).gr_name
        if right:
            lines.append(f"folder {folder}: {user}:{group_name}, mode {mode:o}")
        else:
            todo.append(f"chown {user}:{group_name} {folder} && chmod {mode:o} {folder}")
    if todo:
        lines.append("not root: run as root to give the folders their owner and mode:")
        lines += [f"  {command}" for command in todo]
    return lines
