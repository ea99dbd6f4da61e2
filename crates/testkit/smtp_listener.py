#!/usr/bin/python3
"""An SMTP listener for Portcullis's tests (started by crates/testkit/src/smtp.rs).

Built on Debian's python3-aiosmtpd (1.4). It binds 127.0.0.1:PORT itself (0 = any
free port), prints `listening on 127.0.0.1:PORT` on stdout once it accepts
connections, logs the SMTP dialogue on stderr and stores every accepted message as
`STATE/messages/NNNNNN.json` (written to a temporary name, then renamed). Messages
answered with the scripted transient failure go to `STATE/rejected/`, and the number
of files there is the failure count, so a restarted listener keeps counting.

Options come as one JSON object in argv[1]:
  state_dir, port, mode ("plain" | "starttls" | "implicit"), starttls_required,
  cert_file, key_file, auth_user, auth_password (null = no AUTH), fail_first.
"""

import asyncio
import base64
import email
import email.policy
import hmac
import json
import logging
import os
import secrets
import socket
import ssl
import sys
import time

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, auth_mechanism
except ImportError as error:  # the Rust side turns this into a clear error
    print(
        f"smtp_listener: cannot import aiosmtpd ({error}); install the Debian "
        "package python3-aiosmtpd (scripts/test.sh does) and run this with "
        "Debian's /usr/bin/python3",
        file=sys.stderr,
    )
    sys.exit(3)

log = logging.getLogger("smtp_listener")


def write_json_atomically(folder, name, value):
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(folder, name))


def count_files(folder):
    try:
        return sum(1 for n in os.listdir(folder) if n.endswith(".json"))
    except FileNotFoundError:
        return 0


def decoded_parts(message):
    """(text/plain body, text/html body) of a parsed message, None when absent;
    line ends normalised to LF."""
    text = html = None
    try:
        part = message.get_body(preferencelist=("plain",))
        if part is not None:
            text = part.get_content().replace("\r\n", "\n")
        part = message.get_body(preferencelist=("html",))
        if part is not None:
            html = part.get_content().replace("\r\n", "\n")
    except Exception as error:  # a malformed message is still recorded raw
        log.warning("cannot decode the message body: %r", error)
    return text, html


def decoded_headers(message):
    headers = []
    for name, value in message.items():
        try:
            headers.append([name, str(value)])
        except Exception:
            headers.append([name, message.get_all(name, failobj=[""])[0]])
    return headers


class Handler:
    def __init__(self, options):
        self.options = options
        self.messages_dir = os.path.join(options["state_dir"], "messages")
        self.rejected_dir = os.path.join(options["state_dir"], "rejected")
        os.makedirs(self.messages_dir, exist_ok=True)
        os.makedirs(self.rejected_dir, exist_ok=True)

    def record(self, server, session, envelope, accepted):
        raw_bytes = envelope.original_content or b""
        message = email.message_from_bytes(raw_bytes, policy=email.policy.default)
        text, html = decoded_parts(message)
        ssl_object = server.transport.get_extra_info("ssl_object")
        auth = session.auth_data if session.authenticated else None
        return {
            "envelope_from": envelope.mail_from,
            "envelope_to": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "tls": ssl_object is not None,
            "tls_version": ssl_object.version() if ssl_object is not None else None,
            "auth_user": auth["user"] if isinstance(auth, dict) else None,
            "auth_mechanism": auth["mechanism"] if isinstance(auth, dict) else None,
            "helo": session.host_name,
            "peer": list(session.peer) if session.peer else None,
            "received_at": time.time(),
            "accepted": accepted,
            "headers": decoded_headers(message),
            "text_body": text,
            "html_body": html,
            "raw": raw_bytes.decode("utf-8", errors="replace"),
        }

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # The 5-argument hook must set host_name itself. Without AUTH configured,
        # drop aiosmtpd's "250-AUTH" line, which would otherwise list nothing.
        session.host_name = hostname
        if self.options.get("auth_user") is None:
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        return responses

    async def handle_DATA(self, server, session, envelope):
        rejected = count_files(self.rejected_dir)
        if rejected < self.options["fail_first"]:
            record = self.record(server, session, envelope, False)
            write_json_atomically(self.rejected_dir, f"{rejected + 1:06}.json", record)
            log.info("scripted failure %d/%d: 451", rejected + 1, self.options["fail_first"])
            return "451 4.3.0 Scripted transient failure (testkit fail_first), try again"
        record = self.record(server, session, envelope, True)
        number = count_files(self.messages_dir) + 1
        write_json_atomically(self.messages_dir, f"{number:06}.json", record)
        log.info(
            "stored message %06d from %r to %r (tls=%s, auth=%s)",
            number,
            record["envelope_from"],
            record["envelope_to"],
            record["tls"],
            record["auth_user"],
        )
        return "250 2.0.0 OK: queued as %06d" % number

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        # RFC 2195: challenge <random.time@host>, answer "user hex(hmac_md5(password, challenge))".
        if len(args) != 1:
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.token_hex(8)}.{int(time.time())}@portcullis-testkit>".encode()
        answer = await server.challenge_auth(challenge)
        if not isinstance(answer, bytes):  # MISSING: aborted, already answered
            return AuthResult(success=False, handled=True)
        user, _, digest = answer.decode("utf-8", errors="replace").rpartition(" ")
        expected = hmac.new(
            self.options["auth_password"].encode(), challenge, "md5"
        ).hexdigest()
        if user == self.options["auth_user"] and hmac.compare_digest(digest, expected):
            return AuthResult(success=True, auth_data={"user": user, "mechanism": "CRAM-MD5"})
        log.info("CRAM-MD5 rejected for %r", user)
        return AuthResult(success=False, handled=False)


def authenticator(options):
    def check(server, session, envelope, mechanism, auth_data):
        # handled=False makes aiosmtpd answer 535; its default (True) means "already
        # answered" and would leave the client waiting.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", errors="replace")
        password = auth_data.password.decode("utf-8", errors="replace")
        if user == options["auth_user"] and password == options["auth_password"]:
            return AuthResult(success=True, auth_data={"user": user, "mechanism": mechanism})
        log.info("%s rejected for %r", mechanism, user)
        return AuthResult(success=False, handled=False)

    return check


def server_tls_context(options):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options["cert_file"], options["key_file"])
    return context


async def main(options):
    loop = asyncio.get_running_loop()
    mode = options["mode"]
    handler = Handler(options)
    tls = server_tls_context(options) if mode in ("starttls", "implicit") else None
    with_auth = options.get("auth_user") is not None

    def factory():
        kwargs = dict(
            hostname="portcullis-testkit.localhost",
            ident="Portcullis testkit SMTP",
            loop=loop,
            timeout=60,
        )
        if mode == "starttls":
            kwargs["tls_context"] = tls
            kwargs["require_starttls"] = bool(options["starttls_required"])
        if with_auth:
            kwargs["auth_required"] = True
            kwargs["authenticator"] = authenticator(options)
            # aiosmtpd only sees STARTTLS as TLS; under implicit TLS, and in plain
            # mode on purpose, AUTH must be allowed without it.
            kwargs["auth_require_tls"] = mode == "starttls"
        else:
            # No AUTH at all: hide the mechanisms instead of offering ones that
            # always fail.
            kwargs["auth_exclude_mechanism"] = ["LOGIN", "PLAIN", "CRAM-MD5"]
        return SMTP(handler, **kwargs)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(options["port"])))
    sock.listen(64)
    server = await loop.create_server(
        factory, sock=sock, ssl=tls if mode == "implicit" else None
    )
    host, port = sock.getsockname()[:2]
    log.info("mode=%s auth=%s fail_first=%s", mode, with_auth, options["fail_first"])
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.DEBUG,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("asyncio").setLevel(logging.INFO)
    try:
        asyncio.run(main(json.loads(sys.argv[1])))
    except OSError as error:
        log.error("cannot listen: %s", error)
        sys.exit(4 if error.errno == 98 else 1)
