import { createHash } from 'node:crypto';
import pg from 'pg';
import type { DeltaSnapshot } from '../delta/index.js';
import { PierError } from '../errors.js';
import type { TargetLayout } from './columns.js';
import { CopyBinaryEncoder, CopyBinaryWriter, copyColumns } from './copy-binary.js';
import {
  ASYNC_COMMIT,
  columnDefinitions,
  columnList,
  copyInto,
  ensureProgressTable,
  keyList,
  qualified,
  type SyncTarget,
  writeProgress,
} from './target.js';

export interface SnapshotProgress {
  syncedRows: number;
  /** From the data files' statistics, when every file has them. */
  totalRows?: number;
}

export interface SnapshotResult {
  deltaVersion: number;
  /** Rows now in the Postgres table. */
  rows: number;
  /** Source rows left out because a primary key column was null. */
  skippedNullKeys: number;
}

/**
 * Copies one version of a Delta table into its Postgres table, whole or not
 * at all. The rows stream through COPY into a staging table without a key
 * (the fastest load Postgres has), the key is built once at the end, and
 * the staging table takes the target's name in the same transaction that
 * records the version: readers see the old table until the commit and the
 * new one after it, never half a table and never none. A crash at any point
 * leaves the old table and its version as they were.
 *
 * @example
 * await snapshotInto(client, { snapshot, target: { schema: 'operational', table: 'daily_revenue' }, layout });
 */
export async function snapshotInto(
  client: pg.ClientBase,
  options: {
    snapshot: DeltaSnapshot;
    target: SyncTarget;
    layout: TargetLayout;
    /** Owner and readers of the new table (the pipeline's writer and reader roles). */
    owner?: string;
    readers?: string[];
    commitTimestamp?: Date;
    onProgress?: (progress: SnapshotProgress) => void;
    /** The new table's heap fillfactor (Postgres' default, 100, without it). */
    fillfactor?: number;
  },
): Promise<SnapshotResult> {
  const { snapshot, target, layout } = options;
  await ensureProgressTable(client);
  // Postgres identifiers hold 63 bytes: keep the staging name short and unique to this target.
  const staging: SyncTarget = { schema: target.schema, table: `pier_staging_${hashName(target)}` };
  const keyConstraint = `${target.table.slice(0, 58)}_pkey`;
  const totalRows = totalRowsOf(snapshot);
  let syncedRows = 0;
  const encoder = new CopyBinaryEncoder(copyColumns(layout.columns), {
    keys: layout.primaryKey.map((column) => column.name),
  });

  // Row groups go straight from the parquet decoder's columns to COPY bytes, one at a time.
  async function* data(): AsyncGenerator<Buffer> {
    const out = new CopyBinaryWriter();
    out.header();
    for await (const batch of snapshot.scanColumns()) {
      encoder.encode(out, batch);
      syncedRows += batch.length;
      yield* out.take();
      options.onProgress?.({ syncedRows, ...(totalRows !== undefined ? { totalRows } : {}) });
    }
    out.trailer();
    yield* out.take();
  }

  await client.query('BEGIN');
  await client.query(ASYNC_COMMIT);
  try {
    // One snapshot of a target at a time, whichever process runs it.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [qualified(target)]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(target.schema)}`);
    await client.query(`DROP TABLE IF EXISTS ${qualified(staging)}`);
    const storage = options.fillfactor ? ` WITH (fillfactor = ${Math.trunc(options.fillfactor)})` : '';
    await client.query(`CREATE TABLE ${qualified(staging)} (${columnDefinitions(layout.columns)})${storage}`);
    // FREEZE: the table is new in this transaction, so its rows can be written frozen and all-visible.
    let rows = await copyInto(
      client,
      `COPY ${qualified(staging)} (${columnList(layout.columns)}) FROM STDIN (FORMAT binary, FREEZE)`,
      data(),
    );
    if (layout.timeseriesKey) rows = await keepLatestPerKey(client, staging, layout);
    await addPrimaryKey(client, staging, layout, `pier_staging_${hashName(target)}_pkey`);
    await client.query(`DROP TABLE IF EXISTS ${qualified(target)}`);
    await client.query(`ALTER TABLE ${qualified(staging)} RENAME TO ${pg.escapeIdentifier(target.table)}`);
    await client.query(
      `ALTER TABLE ${qualified(target)} RENAME CONSTRAINT ${pg.escapeIdentifier(`pier_staging_${hashName(target)}_pkey`)} TO ${pg.escapeIdentifier(keyConstraint)}`,
    );
    if (options.owner)
      await client.query(`ALTER TABLE ${qualified(target)} OWNER TO ${pg.escapeIdentifier(options.owner)}`);
    for (const reader of options.readers ?? []) {
      await client.query(`GRANT SELECT ON ${qualified(target)} TO ${pg.escapeIdentifier(reader)}`);
    }
    await writeProgress(client, target, {
      deltaVersion: snapshot.version,
      ...(options.commitTimestamp ? { deltaCommitTimestamp: options.commitTimestamp } : {}),
    });
    await client.query('COMMIT');
    return { deltaVersion: snapshot.version, rows, skippedNullKeys: encoder.skippedNullKeys };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** With a timeseries key, among rows of one key the one with the latest timeseries value stays. */
async function keepLatestPerKey(
  client: pg.ClientBase,
  staging: SyncTarget,
  layout: TargetLayout,
): Promise<number> {
  const ts = pg.escapeIdentifier((layout.timeseriesKey as { name: string }).name);
  const latest: SyncTarget = { schema: staging.schema, table: `${staging.table}_latest` };
  await client.query(
    `CREATE TABLE ${qualified(latest)} AS
       SELECT DISTINCT ON (${keyList(layout)}) * FROM ${qualified(staging)}
        ORDER BY ${keyList(layout)}, ${ts} DESC NULLS LAST`,
  );
  await client.query(`DROP TABLE ${qualified(staging)}`);
  await client.query(`ALTER TABLE ${qualified(latest)} RENAME TO ${pg.escapeIdentifier(staging.table)}`);
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${qualified(staging)}`);
  return Number(rows[0].n);
}

async function addPrimaryKey(
  client: pg.ClientBase,
  staging: SyncTarget,
  layout: TargetLayout,
  constraint: string,
): Promise<void> {
  try {
    await client.query(
      `ALTER TABLE ${qualified(staging)} ADD CONSTRAINT ${pg.escapeIdentifier(constraint)} PRIMARY KEY (${keyList(layout)})`,
    );
  } catch (error) {
    const pgError = error as { code?: string; detail?: string };
    if (pgError.code === '23505') {
      // detail: Key (id)=(7) is duplicated.
      const key = /Key (\(.*\))=(\(.*\)) is duplicated/.exec(pgError.detail ?? '');
      throw new PierError(
        'INVALID_STATE',
        `PRIMARY_KEY_CONSTRAINT_VIOLATION: the source has more than one row with primary key ${key ? `${key[1]} = ${key[2]}` : `(${layout.primaryKey.map((c) => c.name).join(', ')})`}. Choose primary key columns that are unique in the source, or set a timeseries_key so the latest row of each key wins.`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The live rows of a version from its files' statistics, or undefined when a file has none. */
function totalRowsOf(snapshot: DeltaSnapshot): number | undefined {
  let total = 0;
  for (const file of snapshot.files) {
    if (!file.stats) return undefined;
    const records = (JSON.parse(file.stats) as { numRecords?: number }).numRecords;
    if (typeof records !== 'number') return undefined;
    total += records - (file.deletionVector?.cardinality ?? 0);
  }
  return total;
}

/** A short, stable tag of a target's name (staging tables must fit Postgres' 63-byte names). */
function hashName(target: SyncTarget): string {
  return createHash('sha256').update(`${target.schema}.${target.table}`).digest('hex').slice(0, 12);
}
