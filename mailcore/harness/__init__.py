"""The fake-MX harness: SMTP servers on loopback that answer like the receivers in the guide's bounce tables.

Why: delivery, retries, bounce classification and events can only be tested end to end against a
receiver that says ``451 4.7.1 Greylisting in action`` twice and then accepts, or
``452 4.2.2 ... OverQuotaTemp``, on demand. The harness replays every recipient-side row of
:mod:`mailcore.delivery.bounce`, chosen by the recipient address or by a YAML scenario file, and records
what it accepted so tests can look (Python API and HTTP).

Use it::

    from mailcore.harness import FakeMX, Scenario
    with FakeMX(http=True) as mx:            # 127.0.0.1, a free port, STARTTLS on
        ...send to ("127.0.0.1", mx.port)...
        mx.messages(rcpt="alice@example.test")   # or GET {mx.http_url}/messages?rcpt=...

    python -m mailcore.harness --port 2525 [--http-port 8025] [--scenario FILE] [--no-tls]

    pytest -p mailcore.harness.pytest_plugin   # fixtures fake_mx, fake_mx_factory, fake_mx_clock
    pytest -p mailcore.testing.pytest_plugin   # these plus the whole mail core: mailcore_service, mailcore_clock

    from mailcore.harness.world import RecipientWorld   # a fake MX plus the DNS of dest.test, shop.test,
    with RecipientWorld() as world: ...                 # example.test (what `mailcore serve --dev` starts)

DNS is not part of this package: the built-in DNS server (``provision/dnsserver.py``) serves the
recipient test domains' MX records. ``mx.dns_records("shop.test", ...)`` gives the records to serve
(an MX per domain and an A record for ``mx.host``); set the mail core's destination port to
``mx.port``. Several servers can share that port on different loopback addresses
(``FakeMX(host="127.0.0.2", port=mx.port)``), so a domain whose MX rejects at connect can sit
beside one that accepts.

Address scheme
--------------
The recipient's local part names the scenario; the domain is ignored, case does not matter, and a
``+tag`` is ignored (``greylist2+order17@shop.test`` is ``greylist2``), so every test can use
fresh addresses. Any other local part is accepted (250).

===================  =====================================================================
local part           behaviour
===================  =====================================================================
``success``          accepted (also SES's simulator address)
``nxbox``            RCPT: ``550 5.1.1 <$EMAIL>: Recipient address rejected: User unknown ...``
``spam``             DATA: ``550 5.7.1 Message rejected as spam by Content Filtering``
``greylist``         RCPT: ``451 4.7.1 Greylisting in action, please come back later`` once, then 250
``greylistN``        the same N times, then 250 (attempts counted per envelope sender + recipient)
``full``             RCPT: ``452 4.2.2 ... https://support.google.com/mail/?p=OverQuotaTemp``
``rateN``            accepted N times per minute (the injected clock), then RCPT
                     ``451 4.7.650 The mail server [$IP] has been temporarily rate limited ...``
``drop``             RCPT: the connection is closed without a reply
``drop-data``        DATA: the connection is closed without a reply
``slow``/``slowMS``  RCPT reply after 2 s / after MS milliseconds (then accepted)
``tempfail``         RCPT: ``451 4.3.0 Temporary server error, please try again later``
``rcpt-reject``      RCPT: ``550 5.7.1 Delivery not authorized, message refused``
``data-reject``      DATA: ``554 5.6.0 Transaction failed: message refused``
``bounce-<row-id>``  the reply of that row of ``mailcore.delivery.bounce.TABLE`` (every recipient-side row,
                     ids listed by ``python -m mailcore.harness --list``), at DATA for rows whose
                     phase is ``data`` and at RCPT otherwise; ``$EMAIL``, ``$IP``, ``$DOMAIN`` filled
                     with the real recipient, client IP and recipient domain
``bounce``           SES simulator: RCPT ``550 5.1.1 user unknown`` (hard bounce)
``suppressionlist``  SES simulator: RCPT ``550 5.1.1 Recipient address is on the suppression list``
``ooto``             SES simulator: accepted, and an out-of-office reply is recorded (``feedback()``)
``complaint``        SES simulator: accepted, and a complaint is recorded (``feedback()``)
===================  =====================================================================

Rejections at connect and MAIL come before the server knows a recipient, so they belong to the
server: the scenario file's ``connect`` and ``mail`` keys (or a second harness from the
``fake_mx_factory`` fixture). A *sender* local part ``mail-reject`` gets
``553 5.7.1 Sender address rejected: not permitted`` at MAIL.

DATA has one reply per transaction: with several recipients, the first refusal wins.

Scenario file (YAML)
--------------------
Every key is optional::

    tls: true                  # offer STARTTLS with a self-signed certificate made at start (default true)
    smtputf8: true             # advertise SMTPUTF8 (RFC 6531); false refuses UTF-8 addresses (default true)
    hostname: fake-mx.test     # the greeting / EHLO name and the certificate's name
    connect: ["421 4.7.0 Try again later", "220"]   # per connection; "220" greets normally
    mail: "250"                # MAIL reply, string or per-attempt list (per envelope sender)
    rate_limit:                # all recipients together
      per_minute: 100
      reply: "421 4.7.0 Too many messages"        # default: the 4.7.650 rate-limit reply above
    recipients:                # exact addresses or shell patterns; first match wins, then the scheme
      alice@example.test:
        rcpt: ["451 4.7.1 Greylisting in action", "451 4.7.1 Greylisting in action", "250"]
        data: "250"
      "*@spam.test":
        scenario: spam         # start from a scheme scenario, then override
        delay_seconds: 0.5     # before the RCPT reply
      "bulk*@example.test":
        rate_per_minute: 3
        rate_reply: "450 4.2.1 slow down"

A reply is three digits and text (``"250"`` alone means ``250 2.0.0 OK``), or ``drop`` to close
the connection. Sequences are per attempt and the last entry repeats. Attempts are counted per
(envelope sender, recipient) at RCPT, per (recipient, Message-ID) at DATA, per envelope sender at
MAIL and per server at connect; ``reset()`` (or ``POST /reset``) forgets them.
"""
from __future__ import annotations

from .scenario import Scenario, ScenarioError, Script, scheme_script
from .server import FakeMX, Feedback, ManualClock, Message, Reply

__all__ = ["FakeMX", "Feedback", "ManualClock", "Message", "Reply", "Scenario", "ScenarioError", "Script",
           "scheme_script"]
