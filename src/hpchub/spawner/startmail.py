"""Mail to a user whose server waited in the queue and has now started (time.email).

Sent through the site's SMTP relay (plain SMTP, no login: a relay inside the site), in a
thread so that a slow relay never holds up the hub. A failure is logged, never raised: the
mail is a courtesy, the server is up either way.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from ..config.timelimit import EmailSettings
from ..config.units import format_duration

SMTP_TIMEOUT_S = 20


def start_message(
    settings: EmailSettings, user: str, label: str, waited_s: int, url: str
) -> EmailMessage:
    """The mail that says the server has started (pure)."""
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = f"{user}@{settings.domain}"
    msg["Subject"] = f"{label} has started"
    msg.set_content(
        f"{label} waited {format_duration(max(60, waited_s - waited_s % 60))} in the queue "
        f"and is running now.\n\nOpen it: {url}\n\n-- hpchub\n"
    )
    return msg


def send(settings: EmailSettings, msg: EmailMessage) -> None:
    """Hand ``msg`` to the site's relay (blocking)."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
        smtp.send_message(msg)


async def send_start_mail(spawner, waited_s: float) -> None:
    """Tell ``spawner``'s user by mail that the server is up, if the site wants that."""
    t = spawner.site.time
    if not t.email.enabled or waited_s < t.queue_notice_after:
        return
    label = f"Your Jupyter server '{spawner.name}'" if spawner.name else "Your Jupyter server"
    url = str(spawner.site.hub.public_url).rstrip("/") + spawner.user.server_url(spawner.name)
    msg = start_message(t.email, spawner.user.name, label, int(waited_s), url)
    try:
        await asyncio.to_thread(send, t.email, msg)
    except (OSError, smtplib.SMTPException) as err:
        spawner.log.warning("hpchub: the start mail to %s failed: %s", msg["To"], err)
    else:
        spawner.log.info("hpchub: told %s by mail that the server started", msg["To"])
