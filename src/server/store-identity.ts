import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PierError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import type { Queryable } from '../store/store.js';

/**
 * Which store a data dir belongs to. The store carries a random id (setting
 * `store_id`) and the data dir records it (`<data-dir>/store-id`) the first
 * time they meet. A later start that finds another store, or an empty one,
 * beside a data dir that holds instances refuses to go on: the reconciler
 * would otherwise take every instance on disk for an orphan.
 */
export interface StoreFacts {
  /** The store's id, if it has one (a store made before ids, or a new one, has none). */
  storeId?: string;
  /** How many instances the store knows, on every node. */
  knownInstances: Set<string>;
}

/** What the store says about itself, read without changing it (no migration has run yet). */
export async function readStoreFacts(store: Queryable): Promise<StoreFacts> {
  const { rows } = await store.query<{ settings: string | null; instances: string | null }>(
    "SELECT to_regclass('settings')::text AS settings, to_regclass('instances')::text AS instances",
  );
  const facts: StoreFacts = { knownInstances: new Set() };
  if (rows[0].settings) {
    const id = await store.query<{ value: unknown }>("SELECT value FROM settings WHERE key = 'store_id'");
    if (typeof id.rows[0]?.value === 'string') facts.storeId = id.rows[0].value;
  }
  if (rows[0].instances) {
    const known = await store.query<{ uid: string }>('SELECT uid::text FROM instances');
    facts.knownInstances = new Set(known.rows.map((row) => row.uid));
  }
  return facts;
}

export async function readRecordedStoreId(storeIdFile: string): Promise<string | undefined> {
  try {
    return (await readFile(storeIdFile, 'utf8')).trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Decides whether this data dir may run against this store. Pure: every
 * case is a value in, a verdict out. `onDisk` is the instance storage the
 * data dir holds; `recorded` the store id it wrote on an earlier start.
 */
export function checkStoreIdentity(input: {
  recorded?: string;
  facts: StoreFacts;
  onDisk: string[];
  dataDir: string;
  storeLabel: string;
}): { ok: true } | { ok: false; message: string } {
  const { recorded, facts, onDisk, dataDir, storeLabel } = input;
  const instances = `${onDisk.length} instance${onDisk.length === 1 ? '' : 's'}`;
  const keepData = `Their data stays untouched in ${dataDir}/instances.`;
  if (recorded && facts.storeId && recorded !== facts.storeId) {
    return {
      ok: false,
      message: `The store (${storeLabel}) belongs to another Pier (store id ${facts.storeId}), not to the data dir ${dataDir} (store id ${recorded}). Point --store-url at the store this data dir was used with, or use another --data-dir. ${keepData}`,
    };
  }
  if (recorded && !facts.storeId) {
    return {
      ok: false,
      message: `The store (${storeLabel}) is empty, but the data dir ${dataDir} was used with store ${recorded}${onDisk.length ? ` and holds ${instances}` : ''}. Point --store-url at that store (or restore ${dataDir}/store from a backup); to begin again with an empty store, use another --data-dir. ${keepData}`,
    };
  }
  if (onDisk.length > 0 && facts.knownInstances.size === 0) {
    return {
      ok: false,
      message: `The store (${storeLabel}) knows no instances, but the data dir ${dataDir} holds ${instances}. Pier will not treat them as orphans. Point --store-url at the store they belong to (or restore ${dataDir}/store from a backup), or use another --data-dir. ${keepData}`,
    };
  }
  if (!recorded && facts.storeId) {
    // A data dir from before store ids, or a new node joining a shared store:
    // it may join only if the store knows every instance it holds.
    const unknown = onDisk.filter((uid) => !facts.knownInstances.has(uid));
    if (unknown.length > 0) {
      return {
        ok: false,
        message: `The store (${storeLabel}) does not know ${unknown.length} of the ${onDisk.length} instances in ${dataDir}/instances (e.g. ${unknown[0]}). Point --store-url at the store they belong to, or use another --data-dir. ${keepData}`,
      };
    }
  }
  return { ok: true };
}

/**
 * Gives the store an id if it has none and records it in the data dir. Runs
 * after migrations (the settings table exists). Two nodes racing on one new
 * store agree on the first id written.
 */
export async function recordStoreIdentity(store: Queryable, storeIdFile: string): Promise<string> {
  await store.query(
    "INSERT INTO settings (key, value) VALUES ('store_id', to_jsonb($1::text)) ON CONFLICT (key) DO NOTHING",
    [randomUUID()],
  );
  const { rows } = await store.query<{ value: string }>("SELECT value FROM settings WHERE key = 'store_id'");
  const storeId = rows[0].value;
  if ((await readRecordedStoreId(storeIdFile)) !== storeId)
    await writeFileAtomic(storeIdFile, `${storeId}\n`);
  return storeId;
}

/** Refuses to start with the verdict's message (see checkStoreIdentity). */
export function assertStoreIdentity(verdict: ReturnType<typeof checkStoreIdentity>): void {
  if (!verdict.ok) throw new PierError('INVALID_STATE', verdict.message);
}
