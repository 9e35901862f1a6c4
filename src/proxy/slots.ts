/**
 * At most `width()` (at least one) holders per key at a time; the others wait in line.
 * Memory is bounded by who holds or waits: a key is forgotten when nobody
 * does, and a waiter whose `signal` aborts leaves the line.
 *
 * @example
 * const slots = new KeyedSlots();
 * const release = await slots.acquire(instance.uid, () => 2, signal);
 * try { await checkPassword() } finally { release() }
 */
export class KeyedSlots {
  private readonly keys = new Map<string, { held: number; width: () => number; waiting: (() => void)[] }>();

  async acquire(key: string, width: () => number, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let entry = this.keys.get(key);
    if (!entry) {
      entry = { held: 0, width, waiting: [] };
      this.keys.set(key, entry);
    }
    entry.width = width;
    if (entry.held < Math.max(1, width()) && entry.waiting.length === 0) {
      entry.held++;
      return this.releaser(key);
    }
    const line = entry.waiting;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = line.indexOf(take);
        if (at >= 0) line.splice(at, 1);
        this.forgetIfIdle(key);
        reject(signal?.reason);
      };
      const take = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      line.push(take);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.releaser(key);
  }

  /** How many keys are held or waited for. */
  get size(): number {
    return this.keys.size;
  }

  private releaser(key: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const entry = this.keys.get(key);
      if (!entry) return;
      entry.held--;
      // The width is read again: it may have shrunk (e.g. failures were recorded meanwhile).
      while (entry.waiting.length > 0 && entry.held < Math.max(1, entry.width())) {
        entry.held++;
        (entry.waiting.shift() as () => void)();
      }
      this.forgetIfIdle(key);
    };
  }

  private forgetIfIdle(key: string): void {
    const entry = this.keys.get(key);
    if (entry && entry.held === 0 && entry.waiting.length === 0) this.keys.delete(key);
  }
}
