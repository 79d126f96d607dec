/**
 * The email a user gets when an export of theirs ends (docs/email.md): its subject and plain
 * text. SUCCESS: counts, size and a signed download link; FAILURE and REVOKED: the readable
 * error. Pure, so that every attempt of one email builds the same message.
 */

import { formatFileSize } from "./file_size.ts";

/** What the message says, from the export at its end. */
export interface ExportEmailFacts {
  exportId: number;
  projectName: string;
  format: string;
  status: string;
  recordCount: number;
  fileSize: number;
  checksum: string | null;
  error: string | null;
  errorStage: string | null;
  /** The signed download link (SUCCESS only). */
  link?: string;
  /** Until when the link opens the file. */
  linkExpiresAt?: Date;
}

/** A composed email: `{subject, text}`. */
export interface ExportEmail {
  subject: string;
  text: string;
}

/**
 * `2.2 MB (2,345,678 bytes)`: the size every other read shows (`file_size_display`, the data
 * card: domain/file_size.ts) and the exact count; a size under 1 KB once: `502 bytes`.
 */
function sizeText(bytes: number): string {
  const exact = `${bytes.toLocaleString("en-US")} bytes`;
  return bytes < 1024 ? exact : `${formatFileSize(bytes)} (${exact})`;
}

/**
 * The subject and text of the email of an export's end. Subject:
 * `Your export "<project> – <format>" is ready` (SUCCESS), `… failed` (FAILURE),
 * `… was cancelled` (REVOKED). Names are stripped of line breaks (no header injection; the
 * SMTP library encodes the rest).
 */
export function composeExportEmail(facts: ExportEmailFacts): ExportEmail {
  const oneLine = (s: string): string => s.replace(/[\r\n]+/g, " ").trim();
  const title = `"${oneLine(facts.projectName)} – ${oneLine(facts.format)}"`;
  const lines: string[] = [];
  let subject: string;
  if (facts.status === "SUCCESS") {
    subject = `Your export ${title} is ready`;
    lines.push(
      `Your export ${title} (export ${facts.exportId}) is ready.`,
      "",
      `Records: ${facts.recordCount.toLocaleString("en-US")}`,
      `Size: ${sizeText(facts.fileSize)}`,
    );
    if (facts.checksum) lines.push(`Checksum: ${facts.checksum}`);
    if (facts.link) {
      lines.push("", "Download it here (no sign-in needed):", facts.link);
      if (facts.linkExpiresAt) {
        lines.push("", `The link works until ${facts.linkExpiresAt.toISOString()}.`);
      }
    }
  } else {
    const cancelled = facts.status === "REVOKED";
    subject = `Your export ${title} ${cancelled ? "was cancelled" : "failed"}`;
    lines.push(
      `Your export ${title} (export ${facts.exportId}) ${cancelled ? "was cancelled" : "failed"}.`,
      "",
    );
    const stage = facts.errorStage ? ` (in ${facts.errorStage})` : "";
    if (facts.error) lines.push(`Error${stage}: ${facts.error}`);
    else if (cancelled) lines.push("It was cancelled before it finished; no file was kept.");
    lines.push(
      "",
      `POST /api/v2/exports/${facts.exportId}/retry/ runs it again.`,
    );
  }
  lines.push("", "-- ", "ami-exports");
  return { subject, text: lines.join("\n") + "\n" };
}
