/**
 * Where the demo's synthetic source images live in storage and which request paths may name
 * one: every image is the object `<STORAGE_PREFIX>sources/<path>`, served read-only over HTTP at
 * `/sources/<path>` (api/sources.ts) and written by the demo seed (db/seed_demo_images.ts).
 * A path is checked before it becomes a key, so nothing outside the sources prefix is ever named.
 */

/** The storage folder of the source images, under `STORAGE_PREFIX`. */
export const SOURCES_FOLDER = "sources/";

/** The longest source path accepted, in characters (ASCII only, so also in bytes). */
export const MAX_SOURCE_PATH = 512;

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/**
 * Why `path` (decoded, relative to the sources folder, e.g. `demo-1/station-1/a.jpg`) may not
 * name a source image; undefined when it may. Only `/`-separated segments of ASCII letters,
 * digits, `.`, `_` and `-` that do not start with a dot, each at most 128 characters, at most
 * {@link MAX_SOURCE_PATH} in all: so no `..` or `.` segment, no absolute path, no empty segment,
 * no backslash, percent sign or control character.
 */
export function sourcePathProblem(path: string): string | undefined {
  if (path.length === 0) return "empty";
  if (path.length > MAX_SOURCE_PATH) return `longer than ${MAX_SOURCE_PATH} characters`;
  if (path.startsWith("/")) return "absolute";
  const bad = path.split("/").find((segment) => !SEGMENT.test(segment));
  if (bad === undefined) return undefined;
  return bad === "" ? "empty path segment" : "path segment not allowed";
}

/**
 * The object key of source image `path` under `storagePrefix` (`""` or segments ending in `/`).
 * Throws a RangeError when `path` is not allowed ({@link sourcePathProblem}).
 */
export function sourceKey(storagePrefix: string, path: string): string {
  const problem = sourcePathProblem(path);
  if (problem) throw new RangeError(`invalid source path: ${problem}: ${path.slice(0, 100)}`);
  return `${storagePrefix}${SOURCES_FOLDER}${path}`;
}
