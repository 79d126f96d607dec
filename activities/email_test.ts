import { assertEquals } from "../tests/assert.ts";
import { emailMessageId, isRetryableSmtpError } from "./email.ts";

Deno.test("email: the Message-ID is the email's id at the domain of EMAIL_FROM", () => {
  const id = "0c1c2f76-4fe7-42db-b3f7-275134a5972f";
  assertEquals(
    emailMessageId(id, "Moth exports <exports@ami.example.org>"),
    `<export-email-${id}@ami.example.org>`,
  );
  assertEquals(emailMessageId(id, "noreply@localhost"), `<export-email-${id}@localhost>`);
});

Deno.test("email: connection errors, 4xx and authentication failures are retried, other 5xx not", () => {
  assertEquals(isRetryableSmtpError({ code: "ECONNECTION" }), true);
  assertEquals(isRetryableSmtpError({ code: "ETIMEDOUT" }), true);
  assertEquals(isRetryableSmtpError({ code: "EENVELOPE", responseCode: 451 }), true);
  assertEquals(isRetryableSmtpError({ code: "EAUTH", responseCode: 535 }), true);
  assertEquals(isRetryableSmtpError({ code: "EENVELOPE", responseCode: 550 }), false);
});
