"""A real, throw-away Dovecot IMAP server for the tests (no fake IMAP anywhere).

``DovecotServer(workdir).start()`` writes a minimal ``dovecot.conf`` under ``workdir`` (its own
base_dir, passwd-file users with plaintext passwords, Maildir storage, log file, no syslog), then runs
``dovecot -F`` as a child process on a free loopback port. It works as root (Dovecot refuses uid 0 for
mail access, so the mail processes run as ``nobody``) and as an ordinary user (they run as that user).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from imapclient import IMAPClient

from tests.services import free_port

_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = inbox-test-{port}
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
mail_location = maildir:{base}/mail/%u
mail_fsync = always
protocol imap {{
  imap_idle_notify_interval = 1 secs
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
"""


IMAP_PASSWORD = "Imap-S3cret-7d1f!pass"  # the "inbox" user of the test servers


class DovecotServer:
    """A Dovecot child process on ``127.0.0.1:port`` with the given users (name -> password)."""

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        extra_conf: str = "",
        tls: bool = False,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise RuntimeError("dovecot is not installed: run scripts/bootstrap.sh --test (dovecot-imapd)")
        self.binary = binary
        self.workdir = workdir
        self.users = users or {"inbox": "imap-test-password"}
        self.extra_conf = extra_conf  # e.g. "imap_capability = IMAP4rev1 UIDPLUS" to hide IDLE and MOVE
        self.port = free_port()
        # With ``tls``: a self-signed certificate for 127.0.0.1 (trust ``cert_path``), implicit TLS on
        # ``tls_port`` and STARTTLS on ``port``.
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        # With an introspection URL: XOAUTH2 / OAUTHBEARER logins, each token checked by POSTing it there
        # (RFC 7662); the answer {"active": true, "username": "..."} lets the user in.
        self.oauth2_introspection_url = oauth2_introspection_url
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dovecot.log"

    @property
    def cert_path(self) -> Path:
        return self.workdir / "cert.pem"

    def _make_certificate(self) -> None:
        if self.cert_path.exists():
            return
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(self.workdir / "key.pem"), "-out", str(self.cert_path),
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )

    def maildir(self, user: str) -> Path:
        return self.workdir / "mail" / user

    def _write_config(self) -> None:
        for sub in ("run", "state", "mail", "home"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        me = pwd.getpwuid(os.getuid())
        login_user = "dovenull" if os.getuid() == 0 and _user_exists("dovenull") else me.pw_name
        # Dovecot refuses uid 0 for mail access: as root, the mail processes run as "nobody".
        mail = pwd.getpwnam("nobody") if os.getuid() == 0 else me
        for sub in ("mail", "home"):
            os.chown(self.workdir / sub, mail.pw_uid, mail.pw_gid)
        if self.tls:
            self._make_certificate()
            ssl = f"ssl = yes\nssl_cert = <{self.cert_path}\nssl_key = <{self.workdir / 'key.pem'}"
        else:
            ssl = "ssl = no"
        self.conf_path.write_text(
            _CONF.format(
                base=self.workdir,
                port=self.port,
                tls_port=self.tls_port,
                ssl=ssl,
                uid=mail.pw_uid,
                gid=mail.pw_gid,
                user=me.pw_name,
                group=_group_name(os.getgid()),
                login_user=login_user,
            )
            + self.extra_conf
            + "\n"
        )
        if self.oauth2_introspection_url:
            oauth_conf = self.workdir / "oauth2.conf.ext"
            oauth_conf.write_text(
                f"introspection_mode = post\nintrospection_url = {self.oauth2_introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            )
            with self.conf_path.open("a") as fh:
                fh.write(
                    "auth_mechanisms = plain login xoauth2 oauthbearer\n"
                    f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {oauth_conf}\n}}\n"
                )
        lines = [f"{name}:{{PLAIN}}{password}::::::" for name, password in self.users.items()]
        (self.workdir / "users").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self._write_config()
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                raise RuntimeError(f"dovecot exited at start-up: {err}\n{log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dovecot did not start listening within 15 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None

    def client(self, user: str | None = None) -> IMAPClient:
        """A logged-in plain-text client (loopback only) for delivering and checking messages."""
        user = user or next(iter(self.users))
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user, self.users[user])
        return client


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name
