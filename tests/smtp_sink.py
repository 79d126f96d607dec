"""A local SMTP server for tests/email_test.ts (aiosmtpd): every message it accepts becomes
<out>/<n>.json ({mail_from, rcpt_tos, from, to, subject, message_id, body}), written when the
DATA command ends and `delay` seconds before the 250 answer (so a test can act between the
message reaching the server and the client's record of it).

Usage: python tests/smtp_sink.py <port> <out dir> [delay seconds]
"""
import asyncio
import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out: str, delay: float):
        self.out = out
        self.delay = delay
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "body": message.get_body(("plain",)).get_content(),
        }
        path = os.path.join(self.out, f"{self.count:04d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"


def main() -> None:
    port, out = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    os.makedirs(out, exist_ok=True)
    controller = Controller(Sink(out, delay), hostname="127.0.0.1", port=port)
    controller.start()
    print("smtp sink ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
