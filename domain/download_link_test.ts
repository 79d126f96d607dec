import { assert, assertEquals } from "../tests/assert.ts";
import {
  downloadLinkExpiry,
  downloadLinkProblem,
  downloadLinkSignature,
  signedDownloadUrl,
} from "./download_link.ts";

const SECRET = "a-test-secret-of-some-length";

Deno.test("download link: a signed URL verifies until it expires, tampering is refused", () => {
  const expiresAt = new Date("2030-01-01T00:00:00.900Z");
  const url = new URL(
    signedDownloadUrl("http://api.test/", 17, { secret: SECRET, expiresAt }),
  );
  assertEquals(url.pathname, "/api/v2/exports/17/download/");
  const expires = url.searchParams.get("expires")!;
  const signature = url.searchParams.get("signature")!;
  assertEquals(expires, String(Date.UTC(2030, 0, 1) / 1000));
  assertEquals(signature, downloadLinkSignature(SECRET, 17, Number(expires)));
  const now = Date.UTC(2029, 0, 1);
  assertEquals(downloadLinkProblem(SECRET, { exportId: 17, expires, signature }, now), undefined);
  const refused = [
    { exportId: 18, expires, signature },
    { exportId: 17, expires: String(Number(expires) + 1), signature },
    { exportId: 17, expires, signature: signature.replace(/^./, (c) => c === "0" ? "1" : "0") },
    { exportId: 17, expires, signature: "zz" },
    { exportId: 17, expires: undefined, signature },
    { exportId: 17, expires: "-1", signature },
  ];
  for (const link of refused) {
    assert(downloadLinkProblem(SECRET, link, now), JSON.stringify(link));
  }
  assert(
    downloadLinkProblem("another-secret-of-length", { exportId: 17, expires, signature }, now),
  );
  const late = downloadLinkProblem(SECRET, { exportId: 17, expires, signature }, Date.UTC(2030, 1));
  assert(late?.startsWith("download link expired on 2030-01-01T00:00:00.000Z"), late);
});

Deno.test("download link: expires with the export, else after EMAIL_LINK_MAX_DAYS", () => {
  const from = new Date("2026-12-05T08:00:00Z");
  const at = new Date("2027-01-04T08:00:00Z");
  assertEquals(downloadLinkExpiry(at, { from, linkMaxDays: 3 }), at);
  assertEquals(
    downloadLinkExpiry(null, { from, linkMaxDays: 30 }).toISOString(),
    "2027-01-04T08:00:00.000Z",
  );
});
