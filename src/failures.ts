/**
 * Failures Pier recovers from but must not hide: a background refresh that
 * failed, a cleanup that could not finish. Each is logged with its cause and
 * counted by kind, so `failureCounts()` (and tests) can see how often each
 * happened. No metrics server: a small registry in memory.
 *
 * @example
 * timer = setInterval(() => void refresh().catch((error) => noteFailure('signing-keys.refresh', error)), ms);
 */
const counts = new Map<string, number>();
let sink: (message: string) => void = (message) => process.stderr.write(`${message}\n`);

/** Where failure reports go (the composition root points it at Pier's log). */
export function setFailureLog(log: (message: string) => void): void {
  sink = log;
}

/** Logs `cause` under `kind` (a stable, dotted name: `<module>.<what>`) and counts it. */
export function noteFailure(kind: string, cause: unknown): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
  const text = cause instanceof Error ? cause.message : String(cause);
  const inner =
    cause instanceof Error && cause.cause instanceof Error ? ` (cause: ${cause.cause.message})` : '';
  sink(`${kind} failed: ${text}${inner}`);
}

/** How many times each kind of failure was noted in this process. */
export function failureCounts(): Record<string, number> {
  return Object.fromEntries(counts);
}
