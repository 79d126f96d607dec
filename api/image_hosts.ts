/**
 * An image export refused at request time when no source image can be fetched: with
 * `SOURCE_IMAGE_HOSTS` empty, or with none of the project's capture hosts on it, every image
 * would be left out "host not allowed" (registry/image_sources.ts) and the export would fail
 * late, at `max_skipped_fraction`, after reading every row. Both are known before anything
 * is created.
 */
import type { Sql } from "../db/client.ts";
import { hostListed, httpUrl } from "../registry/image_sources.ts";

/** The captures of the project whose base URLs are read (the first this many found). */
export const CAPTURE_SAMPLE = 10_000;

/** How many distinct refused hosts a message names. */
const HOSTS_NAMED = 5;

/**
 * Why an export of project `projectId` that fetches source images would fetch none, or
 * undefined when it may fetch some: `SOURCE_IMAGE_HOSTS` (`hosts`) is empty, or none of the
 * hosts of the `public_base_url` of the project's captures is on it. The captures are read up
 * to {@link CAPTURE_SAMPLE} (one index scan by deployment); a project with more is refused only
 * for an empty list, since a listed host may sit past the rows read (its images are then
 * checked one by one while exporting, as every image is). The message names the refused hosts
 * and the setting that allows them. A project without captures has nothing to fetch and is not
 * refused (unless the list is empty).
 */
export async function imageHostsProblem(
  sql: Sql,
  options: { projectId: number; hosts: readonly string[] },
): Promise<string | undefined> {
  // one row past the sample says whether it holds every capture of the project
  const bases = await sql<{ base: string; captures: number }[]>`
    select public_base_url as base, count(*)::int as captures from (
      select public_base_url from source_images
      where deployment_id in (select id from deployments where project_id = ${options.projectId})
      limit ${CAPTURE_SAMPLE + 1}
    ) sample
    group by public_base_url`;
  const complete = bases.reduce((sum, row) => sum + row.captures, 0) <= CAPTURE_SAMPLE;
  const refused = new Set<string>();
  for (const { base } of bases) {
    const url = httpUrl(base);
    if (typeof url === "string") continue;
    if (hostListed(url, options.hosts)) return undefined;
    refused.add(url.host.toLowerCase());
  }
  const how = "list the captures' host in SOURCE_IMAGE_HOSTS (comma-separated host or " +
    "host:port entries) of the API and the workers, and restart them (docs/configuration.md)";
  const named = [...refused].slice(0, HOSTS_NAMED).join(", ") +
    (refused.size > HOSTS_NAMED ? ` and ${refused.size - HOSTS_NAMED} more` : "");
  if (options.hosts.length === 0) {
    return `source image host not allowed: SOURCE_IMAGE_HOSTS is empty, so every image would ` +
      `be left out${refused.size > 0 ? ` (the project's captures are on ${named})` : ""}; ` +
      `to export images, ${how}`;
  }
  // a listed host may hold captures past the sample: not refused on a guess
  if (refused.size === 0 || !complete) return undefined;
  // the list itself is the deployment's, not the caller's: it is not repeated here
  return `source image host not allowed: the project's captures are on ${named}, which ` +
    `SOURCE_IMAGE_HOSTS does not list, so every image would be left out; ${how}`;
}
