import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { noteFailure } from '../failures.js';

/**
 * The tables whose changes caches follow. A statement that changes one
 * NOTIFYs its channel (triggers of migration 8), in whichever Pier process
 * it ran: every process sharing the store hears it once it commits.
 */
const CHANGE_CHANNELS = {
  instances: 'pier_instances_changed',
  identities: 'pier_identities_changed',
  signingKeys: 'pier_signing_keys_changed',
} as const;

export type ChangedTable = keyof typeof CHANGE_CHANNELS;

/**
 * One LISTEN connection to the store, telling subscribers which table
 * changed. Notifications carry no payload: a cache reloads what it holds.
 * When the connection drops it is made again, and every subscriber is told
 * once (a change may have been missed meanwhile). Caches keep a slow poll
 * too, as a safety net.
 *
 * @example
 * const changes = await StoreChanges.listen(store.url);
 * changes.on('signingKeys', () => void keys.reload());
 * await changes.close();
 */
export class StoreChanges {
  private readonly handlers = new Map<ChangedTable, Set<() => void>>();
  private client?: pg.Client;
  private closed = false;

  private constructor(private readonly url: string) {}

  /** Connects and listens on every channel before returning. */
  static async listen(url: string): Promise<StoreChanges> {
    const changes = new StoreChanges(url);
    await changes.connect();
    return changes;
  }

  /** Calls `handler` after each committed change to `table`; returns the unsubscribe. */
  on(table: ChangedTable, handler: () => void): () => void {
    const set = this.handlers.get(table) ?? new Set();
    this.handlers.set(table, set);
    set.add(handler);
    return () => set.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch((error) => noteFailure('store-changes.close', error));
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'pier change listener' });
    client.on('notification', (message) => {
      const table = (Object.keys(CHANGE_CHANNELS) as ChangedTable[]).find(
        (key) => CHANGE_CHANNELS[key] === message.channel,
      );
      if (table) this.tell(table);
    });
    client.on('error', (error) => {
      noteFailure('store-changes.connection', error);
      void this.reconnect(client);
    });
    client.on('end', () => void this.reconnect(client));
    try {
      await client.connect();
      for (const channel of Object.values(CHANGE_CHANNELS)) await client.query(`LISTEN ${channel}`);
    } catch (error) {
      await client.end().catch(() => undefined); // the connect error below is the one that matters
      throw error;
    }
    this.client = client;
  }

  /** Makes the listening connection again, backing off while the store is away. */
  private async reconnect(lost: pg.Client): Promise<void> {
    if (this.closed || this.client !== lost) return;
    this.client = undefined;
    for (let attempt = 0; !this.closed; attempt++) {
      await sleep(Math.min(5000, 100 * 2 ** attempt));
      if (this.closed) return;
      try {
        await this.connect();
        for (const table of this.handlers.keys()) this.tell(table);
        return;
      } catch (error) {
        noteFailure('store-changes.reconnect', error);
      }
    }
  }

  private tell(table: ChangedTable): void {
    for (const handler of this.handlers.get(table) ?? []) handler();
  }
}

/**
 * Keeps a cache fresh: `reload` runs after every change to `table` and, as a
 * safety net for a notification lost with its connection, every `pollMs`.
 * A failed reload is noted (logged and counted) under `kind`; the next change
 * or poll tries again. `reload` must only read: a write to the table would
 * notify every process again.
 *
 * @example
 * const stop = followChanges(changes, 'identities', () => identities.refresh(), { pollMs: 30_000, kind: 'identities.refresh' });
 */
export function followChanges(
  changes: StoreChanges,
  table: ChangedTable,
  reload: () => Promise<void>,
  options: { pollMs: number; kind: string },
): () => void {
  const run = () => void reload().catch((error) => noteFailure(options.kind, error));
  const unsubscribe = changes.on(table, run);
  const timer = setInterval(run, options.pollMs);
  timer.unref();
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}

/** The safety-net poll of every cache that follows store changes. */
export const SAFETY_POLL_MS = 30_000;
