/**
 * Retention rules both the API and the CLI use (docs/retention.md): what an extension asks for
 * and what a download of an EXPIRED export answers. Source of the rule: GBIF download
 * `eraseAfter` (the file is erased after a date the owner may postpone; the record stays).
 */
import type { RetentionSettings } from "../config/mod.ts";

/**
 * The seconds an extension of `days` asks for (default: the configured retention, at most
 * `maxDays`; null when that is 0, kept forever), or the message of a 400 when `days` exceeds
 * `maxDays`. Shape: `{ok: true, seconds}` or `{ok: false, message}`.
 */
export function extensionSeconds(
  days: number | undefined,
  retention: RetentionSettings,
): { ok: true; seconds: number | null } | { ok: false; message: string } {
  if (days === undefined) {
    // the configured retention, but never past the longest extension one may ask for
    // (EXPORT_RETENTION_DAYS may be set above EXPORT_RETENTION_MAX_DAYS)
    const longest = retention.maxDays * 86_400;
    return {
      ok: true,
      seconds: retention.seconds > 0 ? Math.min(retention.seconds, longest) : null,
    };
  }
  if (days > retention.maxDays) {
    return {
      ok: false,
      message: `days must be at most ${retention.maxDays} (EXPORT_RETENTION_MAX_DAYS): ${days}`,
    };
  }
  return { ok: true, seconds: days * 86_400 };
}

/** The message of a 410 for an export whose file was deleted when its retention ended. */
export function expiredMessage(
  row: { id: number; expires_at: Date | null },
): string {
  const when = row.expires_at ? ` on ${row.expires_at.toISOString()}` : "";
  return `export ${row.id} has expired: its file was deleted when its retention ended${when}; ` +
    `POST /api/v2/exports/${row.id}/rerun/ exports the same request again`;
}
