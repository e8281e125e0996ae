# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test receiver for Alertmanager (tests/integration/alerts/alert_sink.py).

It runs as a program on free local ports; a webhook POST and an e-mail like
Alertmanager's are recorded and listed by GET /received.
"""

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

import pytest

PROGRAM = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "integration", "alerts", "alert_sink.py"))
PAYLOAD = {"version": "4", "status": "firing", "alerts": [{"labels": {"alertname": "X", "user": "alice"}}]}
PLAIN = "Alert X is firing for alice.\n.a line that starts with a dot\n..and one with two\n.\nend\n"
HTML = "<html><body><p>Alert <b>X</b> is firing for alice.</p></body></html>\n"


def free_port():
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url, data=None):
    """The status and body of a GET, or of a POST of data."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(name="sink")
def fixture_sink(tmp_path):
    """The running program: its process, base URL, SMTP port and out file."""
    http_port, smtp_port = free_port(), free_port()
    out = tmp_path / "records" / "received.jsonl"
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, PROGRAM, "--address", "127.0.0.1", "--http-port", str(http_port),
         "--smtp-port", str(smtp_port), "--out", str(out)])
    url = "http://127.0.0.1:%d" % http_port
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "the sink exited with %s" % process.returncode
            try:
                if request(url + "/healthz") == (200, b"ok"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the sink did not answer /healthz"
            time.sleep(0.1)
        yield {"process": process, "url": url, "smtp_port": smtp_port, "out": out}
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def alert_email():
    """An e-mail like Alertmanager's: multipart/alternative, plain and HTML."""
    message = EmailMessage()
    message["From"] = "alertmanager@example.org"
    message["To"] = "alice@example.org, ops@example.org"
    message["Subject"] = "[FIRING:1] X"
    message.set_content(PLAIN)
    message.add_alternative(HTML, subtype="html")
    return message


def test_records_webhook_and_email(sink):
    """Both notifications are recorded, the e-mail's text as sent."""
    status, body = request(sink["url"] + "/api/v1/alerts", json.dumps(PAYLOAD).encode())
    assert (status, json.loads(body)) == (200, {})

    with smtplib.SMTP("127.0.0.1", sink["smtp_port"], timeout=10) as client:
        assert client.ehlo("test.example.org")[0] == 250
        assert "8bitmime" in client.esmtp_features
        assert "starttls" not in client.esmtp_features
        assert "auth" not in client.esmtp_features
        refused = client.sendmail("alertmanager@example.org", ["alice@example.org", "ops@example.org"],
                                  alert_email().as_bytes(), mail_options=["BODY=8BITMIME"])
        assert not refused
        assert client.noop()[0] == 250
        assert client.docmd("VRFY", "alice")[0] == 502

    status, body = request(sink["url"] + "/received")
    assert status == 200
    webhook, mail = json.loads(body)
    assert webhook["via"] == "webhook"
    assert webhook["path"] == "/api/v1/alerts"
    assert webhook["payload"] == PAYLOAD
    assert isinstance(webhook["received"], float)
    assert mail["via"] == "email"
    assert mail["from"] == "alertmanager@example.org"
    assert mail["to"] == ["alice@example.org", "ops@example.org"]
    assert mail["subject"] == "[FIRING:1] X"
    assert mail["headers"]["Subject"] == "[FIRING:1] X"
    assert mail["headers"]["Content-Type"].startswith("multipart/alternative")
    assert mail["text"] == PLAIN
    assert "\n.a line that starts with a dot\n..and one with two\n.\n" in mail["text"]

    with open(sink["out"], encoding="utf-8") as out:
        assert [json.loads(line) for line in out] == [webhook, mail]


def test_html_only_email(sink):
    """Without a plain part the text is the HTML part's, without tags."""
    message = EmailMessage()
    message["Subject"] = "[RESOLVED] X"
    message.set_content("<p>placeholder</p>")
    message.make_alternative()
    message.get_payload()[0].set_content(HTML, subtype="html")
    with smtplib.SMTP("127.0.0.1", sink["smtp_port"], timeout=10) as client:
        client.sendmail("am@example.org", ["alice@example.org"], message.as_bytes())
    status, body = request(sink["url"] + "/received")
    assert status == 200
    [mail] = json.loads(body)
    assert mail["subject"] == "[RESOLVED] X"
    assert mail["text"] == "Alert X is firing for alice."


def test_rejects_bad_requests(sink):
    """A body that is not JSON is refused, as are unknown paths; nothing is recorded."""
    assert request(sink["url"] + "/", b"not json {")[0] == 400
    assert request(sink["url"] + "/nothing")[0] == 404
    assert request(sink["url"] + "/received") == (200, b"[]")


def test_sigterm_exits_cleanly(sink):
    """SIGTERM stops the program with status 0."""
    sink["process"].send_signal(signal.SIGTERM)
    assert sink["process"].wait(timeout=10) == 0
