/** Retrying a dependency that is not there yet, with capped exponential backoff and a log. */

/** Delay before retry `attempt` (1-based): 1 s, 2 s, 4 s … capped at `maxMs` (default 30 s). */
export function backoffDelayMs(attempt: number, maxMs = 30_000): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, attempt - 1));
}

/**
 * Calls `attempt` until it resolves, waiting {@link backoffDelayMs} between failures and logging
 * each failure as one JSON line naming `dependency` and `where`, then one line when it answers.
 * Resolves with the value, or with `undefined` once `signal` aborts.
 */
export async function retryForever<T>(
  dependency: string,
  where: string,
  attempt: () => Promise<T>,
  signal: AbortSignal,
): Promise<T | undefined> {
  for (let n = 1; !signal.aborted; n++) {
    try {
      const value = await attempt();
      if (n > 1) console.log(JSON.stringify({ msg: `${dependency} is reachable`, where }));
      return value;
    } catch (error) {
      if (signal.aborted) return undefined;
      const delayMs = backoffDelayMs(n);
      console.error(JSON.stringify({
        level: "warning",
        msg: `${dependency} is not reachable, retrying`,
        where,
        error: error instanceof Error ? error.message : String(error),
        retryInSeconds: delayMs / 1000,
      }));
      await sleep(delayMs, signal);
    }
  }
  return undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
