"""E-mail of a new voicemail message, its WAV attached, through the operator's SMTP relay.

The mail is built here (RFC 5322 with a MIME ``audio/wav`` attachment, RFC 2046 §4.3) and
sent with ``smtplib`` (RFC 5321) in a worker thread: ``send_mail`` blocks, the service
runs it through ``asyncio.to_thread``. A relay that refuses or cannot be reached is logged
(``voicemail.mail_failed``) by the caller; the message stays in the box either way.
"""

from __future__ import annotations

import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from callserver.config.voicemail import SmtpSettings
from callserver.voicemail.box import Message

__all__ = ["message_mail", "send_mail"]

# English names, whatever the process's locale (strftime's %A and %B follow LC_TIME).
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def message_mail(
    message: Message, *, box: str, to: str, sender: str, zone: ZoneInfo, now: datetime
) -> EmailMessage:
    """The mail telling ``to`` of ``message`` in ``box``, the WAV attached."""
    caller = message.caller or "anonymous"
    when = message.time.astimezone(zone)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = f"New voicemail message from {caller}"
    mail["Date"] = format_datetime(now.astimezone(zone))
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    mail.set_content(
        f"A new voicemail message for {box}.\n\n"
        f"From: {caller}\n"
        f"Received: {_WEEKDAYS[when.weekday()]} {when:%d} {_MONTHS[when.month - 1]} "
        f"{when:%Y %H:%M} ({zone.key})\n"
        f"Length: {message.duration:.0f} s\n\n"
        "The message is attached as a WAV file. Dial *97 from your phone to manage your box.\n"
    )
    mail.add_attachment(
        message.wav.read_bytes(), maintype="audio", subtype="wav", filename=message.wav.name
    )
    return mail


def send_mail(smtp: SmtpSettings, mail: EmailMessage) -> None:
    """Hand ``mail`` to the relay ``smtp`` names (blocking).

    Raises:
        OSError, smtplib.SMTPException: the relay could not be reached or refused the mail.
        ValueError: no relay is configured.
    """
    if smtp.host is None:
        raise ValueError("no SMTP relay is configured (voicemail.smtp.host)")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        client.send_message(mail)
