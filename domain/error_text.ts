/**
 * One line for an error and the causes it wraps (`Error.cause`, ES2022), outermost first:
 * `TypeError: fetch failed: ConnectionRefused: Connection refused (os error 111)`. A wrapper
 * such as fetch's `TypeError: fetch failed` or the Temporal client's `ServiceError: Failed to
 * start Workflow` says little alone; what went wrong is in its cause. A cause whose text the
 * line already holds is not repeated; at most `maxDepth` (default 5) causes are followed.
 */
export function errorText(error: unknown, maxDepth = 5): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth <= maxDepth && current !== undefined && current !== null; depth++) {
    const text = current instanceof Error
      ? (current.message ? `${current.name}: ${current.message}` : current.name)
      : String(current);
    if (!parts.some((part) => part.includes(text))) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(": ");
}

/**
 * The message of the innermost cause of `error` (`Error.cause`, at most `maxDepth` deep), the
 * one that says what was wrong ("Minute is not in range [0-59]") under wrappers such as
 * "Failed to create schedule"; the error's own text when it wraps nothing.
 */
export function innermostMessage(error: unknown, maxDepth = 5): string {
  let current: unknown = error;
  for (let depth = 0; depth < maxDepth; depth++) {
    const cause = current instanceof Error ? current.cause : undefined;
    if (cause === undefined || cause === null) break;
    current = cause;
  }
  return current instanceof Error ? current.message || current.name : String(current);
}
