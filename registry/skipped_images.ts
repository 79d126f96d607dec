/**
 * The rules of the image formats on their size and on source images left out (`skipped.csv`):
 * more entries than one archive's checkpoint can list refuses the export, and so does more than
 * `max_skipped_fraction` of the export's items left out, the error naming the counts by reason.
 */
import { type ExportQueryContext, ExportRefusedError, type RecordId } from "./types.ts";

/**
 * The most entries one image archive writes (`images.maxCrops` lowers it in tests). The
 * zip-archive driver's checkpoint keeps every finished entry for the central directory (about
 * 150 bytes each), and a checkpoint travels in a Temporal heartbeat, whose payloads Temporal
 * refuses above 2 MB: 5,000 entries stay near 0.75 MB.
 */
export const MAX_ARCHIVE_ENTRIES = 5_000;

/**
 * Throws an {@link ExportRefusedError} when `total` entries pass {@link MAX_ARCHIVE_ENTRIES},
 * e.g. `crops_by_taxon holds at most 5000 crops per export for now: this request has 6000 …`;
 * `format` names the format (and its option), `what` its entries.
 */
export function refuseAboveMaxEntries(
  ctx: ExportQueryContext,
  total: number,
  options: { format: string; what: string },
): void {
  const max = ctx.settings?.images?.maxCrops ?? MAX_ARCHIVE_ENTRIES;
  if (total <= max) return;
  throw new ExportRefusedError(
    `${options.format} holds at most ${max} ${options.what} per export for now: this request ` +
      `has ${total} (the archive's checkpoint lists every entry it wrote); narrow the filters ` +
      "(taxa, dates, stations, min_score)",
  );
}

/**
 * Throws an {@link ExportRefusedError} when more than `fraction` × `total` of the items are in
 * `skipped` (`[id, reason]`), e.g. `too many crops left out: 4 of 44 detections (more than
 * max_skipped_fraction 0.05): 1 HTTP 404, 3 not an image`; `what` names the items left out
 * (`crops`), `of` what the total counts (`detections`).
 */
export function refuseTooManySkipped(
  skipped: readonly [RecordId, string][],
  total: number,
  options: { fraction: number; what: string; of: string },
): void {
  if (skipped.length <= options.fraction * total) return;
  const reasons = new Map<string, number>();
  for (const [, reason] of skipped) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  throw new ExportRefusedError(
    `too many ${options.what} left out: ${skipped.length} of ${total} ${options.of} (more than ` +
      `max_skipped_fraction ${options.fraction}): ` +
      [...reasons].map(([reason, n]) => `${n} ${reason}`).join(", "),
  );
}
