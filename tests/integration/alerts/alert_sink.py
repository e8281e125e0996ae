# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test receiver for Prometheus Alertmanager notifications.

Stands in for a site's webhook endpoint and mail server, and records what
it receives, one JSON object a line, in the --out file:

- HTTP: ``POST <any path>`` with a JSON body is recorded as
  ``{"via": "webhook", "path", "received", "payload"}`` and answered 200 ``{}``
  (400 when the body is not JSON); ``GET /received`` answers a JSON array of
  every record so far; ``GET /healthz`` answers ``ok``.
- SMTP: a plain ESMTP server (no STARTTLS, no AUTH: Alertmanager needs
  ``require_tls: false``); each message is recorded as
  ``{"via": "email", "received", "from", "to", "subject", "text", "headers"}``,
  where text is the text/plain part, or the body of a message that is not
  multipart, or else the text/html part without its tags.

Standard library only (python3 on Debian trixie has no smtpd).
"""

import argparse
import email
import email.policy
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_MESSAGE_SIZE = 10485760
MAIL_FROM = re.compile(r"FROM:\s*<([^>]*)>", re.IGNORECASE)
RCPT_TO = re.compile(r"TO:\s*<([^>]*)>", re.IGNORECASE)


class Recorder:
    """Appends records to a JSON-lines file, one writer at a time."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def append(self, record):
        """Record one object as a line of the file."""
        line = json.dumps(record, ensure_ascii=False)
        with self.lock:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()

    def read(self):
        """Every record in the file, oldest first."""
        with self.lock:
            try:
                with open(self.path, encoding="utf-8") as records:
                    return [json.loads(line) for line in records if line.strip()]
            except FileNotFoundError:
                return []


class TextOfHtml(HTMLParser):
    """The text of an HTML document: no tags, no style, script or head."""

    SKIPPED = frozenset(("head", "style", "script", "title"))
    BREAKS = frozenset(("br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6"))

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    def text(self):
        """The text, one line for each nonblank line, spaces collapsed."""
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def html_text(markup):
    """The text of an HTML document."""
    parser = TextOfHtml()
    parser.feed(markup)
    parser.close()
    return parser.text()


def part_content(part):
    """A part's decoded content as text, with "\\n" line ends."""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        content = None
    if not isinstance(content, str):
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            content = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        else:
            content = str(part.get_payload())
    return content.replace("\r\n", "\n")


def message_text(message):
    """The text a reader of the message sees (see the module's docstring)."""
    if not message.is_multipart():
        return part_content(message)
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        return part_content(plain)
    markup = message.get_body(preferencelist=("html",))
    if markup is not None:
        return html_text(part_content(markup))
    return ""


class WebhookHandler(BaseHTTPRequestHandler):
    """Records JSON POSTs; lists the records."""

    server_version = "fedgpu-alert-sink"

    def reply(self, status, body, content_type="application/json"):
        """Send a whole response."""
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        """The request's body, sent with a length or in chunks."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):  # pylint: disable=invalid-name
        """Record a webhook notification."""
        received = time.time()
        try:
            payload = json.loads(self.read_body())
        except ValueError:
            self.reply(400, json.dumps({"error": "the body is not JSON"}))
            return
        self.server.recorder.append({"via": "webhook", "path": self.path, "received": received, "payload": payload})
        self.reply(200, "{}")

    def do_GET(self):  # pylint: disable=invalid-name
        """Health and the records."""
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self.reply(200, "ok", "text/plain")
        elif path == "/received":
            self.reply(200, json.dumps(self.server.recorder.read()))
        else:
            self.reply(404, json.dumps({"error": "not found"}))

    def log_request(self, code="-", size="-"):
        """Log no requests, only errors."""


class WebhookServer(ThreadingHTTPServer):
    """The HTTP server, with the recorder for its handlers."""

    daemon_threads = True

    def __init__(self, address, recorder):
        self.recorder = recorder
        super().__init__(address, WebhookHandler)


class SmtpHandler(socketserver.StreamRequestHandler):
    """One SMTP session: records each message sent in it."""

    sender = None
    recipients = ()

    def say(self, *lines):
        """Send a reply, one line or several (a multiline reply)."""
        for index, line in enumerate(lines):
            code, text = line.split(" ", 1)
            separator = " " if index == len(lines) - 1 else "-"
            self.wfile.write(("%s%s%s\r\n" % (code, separator, text)).encode("utf-8"))
        self.wfile.flush()

    def reset(self):
        """Forget the transaction under way."""
        self.sender = None
        self.recipients = []

    def handle(self):
        host = self.server.hostname
        self.say("220 %s fedgpu-alert-sink ESMTP" % host)
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command, argument = (line.decode("utf-8", errors="replace").strip() + " ").split(" ", 1)
            command = command.upper()
            argument = argument.strip()
            if command == "EHLO":
                self.reset()
                self.say("250 %s" % host, "250 8BITMIME", "250 SIZE %d" % MAX_MESSAGE_SIZE)
            elif command == "HELO":
                self.reset()
                self.say("250 %s" % host)
            elif command == "MAIL":
                self.mail(argument)
            elif command == "RCPT":
                self.rcpt(argument)
            elif command == "DATA":
                if not self.data():
                    return
            elif command == "RSET":
                self.reset()
                self.say("250 OK")
            elif command == "NOOP":
                self.say("250 OK")
            elif command == "QUIT":
                self.say("221 %s closing connection" % host)
                return
            else:
                self.say("502 Command not implemented")

    def mail(self, argument):
        """MAIL FROM:<address> [parameters]"""
        match = MAIL_FROM.match(argument)
        if not match:
            self.say("501 Syntax: MAIL FROM:<address>")
            return
        self.reset()
        self.sender = match.group(1)
        self.say("250 OK")

    def rcpt(self, argument):
        """RCPT TO:<address> [parameters]"""
        match = RCPT_TO.match(argument)
        if not match:
            self.say("501 Syntax: RCPT TO:<address>")
        elif self.sender is None:
            self.say("503 Need MAIL before RCPT")
        else:
            self.recipients.append(match.group(1))
            self.say("250 OK")

    def data(self):
        """Read and record a message; False when the client went away."""
        if not self.recipients:
            self.say("503 Need RCPT before DATA")
            return True
        self.say("354 End data with <CR><LF>.<CR><LF>")
        received = time.time()
        lines = []
        while True:
            line = self.rfile.readline()
            if not line:
                return False
            line = line.rstrip(b"\r\n")
            if line == b".":
                break
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)
        message = email.message_from_bytes(b"\r\n".join(lines) + b"\r\n", policy=email.policy.default)
        subject = message["Subject"]
        self.server.recorder.append({
            "via": "email",
            "received": received,
            "from": self.sender,
            "to": self.recipients,
            "subject": None if subject is None else str(subject),
            "text": message_text(message),
            "headers": dict((name, str(value)) for name, value in message.items()),
        })
        self.reset()
        self.say("250 OK")
        return True


class SmtpServer(socketserver.ThreadingTCPServer):
    """The SMTP server, with the recorder for its handlers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, recorder):
        self.recorder = recorder
        self.hostname = socket.gethostname()
        super().__init__(address, SmtpHandler)


def on_signal(signum, frame):  # pylint: disable=unused-argument
    """Leave the main thread's wait; the servers stop in main()."""
    raise SystemExit(0)


def main(argv=None):
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--address", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    parser.add_argument("--http-port", type=int, default=9095, help="webhook port (default: %(default)s)")
    parser.add_argument("--smtp-port", type=int, default=2525, help="SMTP port (default: %(default)s)")
    parser.add_argument("--out", default="/var/lib/fedgpu-alert-sink/received.jsonl",
                        help="JSON-lines file of the records (default: %(default)s)")
    args = parser.parse_args(argv)

    recorder = Recorder(args.out)
    servers = [WebhookServer((args.address, args.http_port), recorder),
               SmtpServer((args.address, args.smtp_port), recorder)]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    print("fedgpu-alert-sink: webhook on %s:%d, SMTP on %s:%d, recording to %s"
          % (args.address, args.http_port, args.address, args.smtp_port, args.out), file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
