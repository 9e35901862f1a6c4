import { type FSWatcher, watch } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Commit files of the Delta log: `00000000000000000012.json`. */
const COMMIT_FILE = /^\d{20}\.json$/;

export interface LogWatcher {
  close(): void;
}

/**
 * Calls `onCommit` soon after a new commit lands in a Delta table's
 * `_delta_log`: at once through the file system's change events, and at
 * least every `pollMs` (default 1 s) as a safety net where events do not
 * arrive (network file systems, a log directory made after the watch began).
 * Calls never overlap: a commit that lands while one runs triggers one more.
 *
 * @example
 * const watcher = watchDeltaLog('/lake/daily_revenue', () => pipeline.kick());
 * // … later
 * watcher.close();
 */
export function watchDeltaLog(
  location: string,
  onCommit: () => Promise<void> | void,
  options: { pollMs?: number; onError?: (error: unknown) => void } = {},
): LogWatcher {
  const dir = join(location.startsWith('file:') ? fileURLToPath(location) : location, '_delta_log');
  let running = false;
  let again = false;
  let closed = false;
  let watcher: FSWatcher | undefined;

  const fire = () => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void Promise.resolve()
      .then(onCommit)
      // A failed pass is reported; the watch goes on, and the next commit or poll tries again.
      .catch((error) => (options.onError ?? ((e) => process.emitWarning(e as Error)))(error))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          fire();
        }
      });
  };

  const startWatching = () => {
    if (watcher || closed) return;
    try {
      watcher = watch(dir, (_event, name) => {
        if (name === null || COMMIT_FILE.test(String(name))) fire();
      });
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined; // the poll below tries again
      });
    } catch {
      // No log directory (yet): the poll keeps looking.
    }
  };

  startWatching();
  const poll = setInterval(() => {
    startWatching();
    fire();
  }, options.pollMs ?? 1000);
  poll.unref();
  return {
    close() {
      closed = true;
      clearInterval(poll);
      watcher?.close();
    },
  };
}
