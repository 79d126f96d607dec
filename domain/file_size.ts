/**
 * A file size for people, the one every read shows: the export object's `file_size_display`,
 * the data card, the CLI and the email when an export ends.
 */

/**
 * `bytes` as `440.4 KB`: powers of 1024 with one decimal, units B, KB, MB, GB, TB (the original
 * platform's `file_size_display`, Django's `filesizeformat`); under 1024, `502 B`.
 */
export function formatFileSize(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
