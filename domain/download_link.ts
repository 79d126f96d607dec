/**
 * Signed download links (docs/email.md): `GET /api/v2/exports/<id>/download/?expires=<unix>&
 * signature=<hex>` opens an export's file without an API token until `expires`, for the link of
 * the email a user gets when an export ends. The signature is the lower-case hex HMAC-SHA256 of
 * `<id>.<expires>` keyed by `SIGNING_SECRET` (the key of the signed `/files/` URLs), compared in
 * constant time (the scheme of S3 presigned URLs and storage/fs.ts `verifyFileSignature`).
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** The hex HMAC-SHA256 of `<exportId>.<expires>` keyed by `secret`. */
export function downloadLinkSignature(secret: string, exportId: number, expires: number): string {
  return createHmac("sha256", secret).update(`${exportId}.${expires}`).digest("hex");
}

/**
 * The signed link of export `exportId` valid until `expiresAt` (unix seconds, rounded down):
 * `<baseUrl>/api/v2/exports/<id>/download/?expires=<unix>&signature=<hex>`.
 */
export function signedDownloadUrl(
  baseUrl: string,
  exportId: number,
  options: { secret: string; expiresAt: Date },
): string {
  const expires = Math.floor(options.expiresAt.getTime() / 1000);
  const signature = downloadLinkSignature(options.secret, exportId, expires);
  return `${baseUrl.replace(/\/+$/, "")}/api/v2/exports/${exportId}/download/` +
    `?expires=${expires}&signature=${signature}`;
}

/**
 * When the link of an email must stop working: the export's `expires_at` (its file is deleted
 * then, docs/retention.md), or, for an export kept forever (`expires_at` null) or not SUCCESS,
 * `linkMaxDays` after `from` (the email's creation, so every attempt sends the same link).
 */
export function downloadLinkExpiry(
  expiresAt: Date | null,
  options: { from: Date; linkMaxDays: number },
): Date {
  return expiresAt ?? new Date(options.from.getTime() + options.linkMaxDays * 86_400_000);
}

/**
 * Why a signed link is refused, or undefined when it is valid at `now` (ms): `expires` must be
 * unix seconds in the future and `signature` 64 hex digits equal (constant time) to
 * {@link downloadLinkSignature}. The reason is a sentence for a 403.
 */
export function downloadLinkProblem(
  secret: string,
  link: { exportId: number; expires: string | undefined; signature: string | undefined },
  now: number = Date.now(),
): string | undefined {
  const { expires, signature } = link;
  if (!expires || !/^\d{1,12}$/.test(expires) || !signature) {
    return "invalid download link: expires (unix seconds) and signature are both required";
  }
  if (!/^[0-9a-f]{64}$/i.test(signature)) return "invalid download link: malformed signature";
  const expected = Buffer.from(
    downloadLinkSignature(secret, link.exportId, Number(expires)),
    "hex",
  );
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) {
    return "invalid download link: the signature does not match";
  }
  if (now >= Number(expires) * 1000) {
    return `download link expired on ${new Date(Number(expires) * 1000).toISOString()}: ` +
      `sign in and download the export from the API, or ask for a new export`;
  }
  return undefined;
}
