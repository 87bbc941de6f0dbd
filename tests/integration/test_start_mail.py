"""The start mail (time.email) end to end: the testbed's hub mails through a real SMTP relay
(aiosmtpd, started here on this machine's end of the hub's link, where the site file points
and the hub host's firewall lets the hub through) when a server that waited in Slurm's queue
starts, and only then."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller

from .conftest import QueueHold, squeue_ids

pytestmark = pytest.mark.timeout(600)


class Keep:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture
def relay(testbed):
    keep = Keep()
    ctl = Controller(
        keep, hostname=testbed["mail_relay"]["host"], port=testbed["mail_relay"]["port"]
    )
    ctl.start()
    try:
        yield keep
    finally:
        ctl.stop()


def _wait_for_mails(keep: Keep, count: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while len(keep.mails) < count and time.monotonic() < end:
        time.sleep(0.5)
    assert len(keep.mails) >= count, f"{len(keep.mails)} mail(s) at the relay, wanted {count}"


def _slurm_wait_s(job: str) -> float:
    """Submit to start of a running job, as slurmctld has them."""
    out = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%V|%S"], capture_output=True, text=True, check=True
    ).stdout.strip()
    submit, start = (dt.datetime.fromisoformat(x) for x in out.split("|"))
    return (start - submit).total_seconds()


def test_a_server_that_waited_mails_its_user_one_that_did_not_does_not(testbed, alice, relay):
    domain = f"{testbed['hub_name']}.invalid"
    notice_after = 20  # the testbed site file's time.queue_notice_after

    # A server that starts at once: no mail.
    alice.start("quick", options={"profile": "small-long"}).raise_for_status()
    alice.wait_ready("quick")
    (quick_job,) = squeue_ids(alice.user)

    # The default server's job waits in the queue (held) longer than queue_notice_after.
    with QueueHold(alice.user, testbed["nodes"]["jupyter"]) as hold:
        r = alice.start(options={"profile": "small-long"})
        assert r.status_code in (201, 202), r.text
        job = hold.hold_next()
        alice.progress_events(until=lambda ev: f"Job {job} is waiting in" in ev.get("message", ""))
        time.sleep(notice_after + 2)  # the queue wait under test; no event marks its passing
        hold.release()
        alice.wait_ready(timeout=180)

    _wait_for_mails(relay, 1)
    if _slurm_wait_s(quick_job) < notice_after - 5:
        # The quick server's mail would have been sent when it came up, before this one's.
        assert len(relay.mails) == 1, [m.content.decode()[:300] for m in relay.mails]
    (mail,) = [m for m in relay.mails if "'quick'" not in m.content.decode()]
    assert mail.mail_from == f"hpchub@{domain}"
    assert mail.rcpt_tos == [f"{alice.user}@{domain}"]
    text = mail.content.decode()
    assert "Subject: Your Jupyter server has started" in text
    assert "in the queue and is running now" in text
    assert f"/user/{alice.user}/" in text
    # No secrets: neither the user's token nor any token-bearing link.
    assert alice.token not in text
    assert "token" not in text.lower()
