import pg from 'pg';
import { type ChangeFeed, type ColumnBatch, type DeltaValue, readChanges } from '../delta/index.js';
import { PierError } from '../errors.js';
import type { TargetLayout } from './columns.js';
import { CopyBinaryEncoder, CopyBinaryWriter, constantField, copyColumns } from './copy-binary.js';
import {
  ASYNC_COMMIT,
  columnDefinitions,
  columnList,
  copyInto,
  keyList,
  qualified,
  readProgress,
  type SyncTarget,
  writeProgress,
} from './target.js';

export interface ChangesResult {
  /** The Delta version the table now reflects. */
  deltaVersion: number;
  /** Change rows read from the feed (pre-images not counted). */
  changes: number;
  upserted: number;
  deleted: number;
  skippedNullKeys: number;
}

/**
 * Applies the Change Data Feed after the table's last applied version, up
 * to `toVersion`, in one transaction that also moves
 * the recorded version: a crash before the commit applies nothing, after it
 * everything, so no change is lost or applied twice.
 *
 * Changes stream through COPY into a temporary table; Postgres keeps the
 * last change per key (by commit version, deletes before inserts within a
 * commit, then feed order) and applies deletes and upserts as two
 * statements, so memory stays bounded however many rows changed.
 *
 * @example
 * await applyChanges(client, { location: '/lake/daily_revenue', target, layout });
 */
export async function applyChanges(
  client: pg.ClientBase,
  options: {
    location: string;
    target: SyncTarget;
    layout: TargetLayout;
    /** The last version to apply (the latest the caller saw in the log). */
    toVersion: number;
    commitTimestamp?: Date;
  },
): Promise<ChangesResult> {
  const { target, layout } = options;
  await client.query('BEGIN');
  await client.query(ASYNC_COMMIT);
  try {
    const progress = await readProgress(client, target, { lock: true });
    if (!progress) {
      throw new PierError(
        'INVALID_STATE',
        `${target.schema}.${target.table} has had no snapshot yet: run a full refresh first.`,
      );
    }
    const from = progress.deltaVersion + 1;
    if (options.toVersion < from) {
      await client.query('ROLLBACK');
      return { deltaVersion: progress.deltaVersion, changes: 0, upserted: 0, deleted: 0, skippedNullKeys: 0 };
    }
    const feed = await readChanges(options.location, from, options.toVersion);
    const result = await applyFeed(client, feed, target, layout);
    await writeProgress(client, target, {
      deltaVersion: feed.endVersion,
      ...(options.commitTimestamp ? { deltaCommitTimestamp: options.commitTimestamp } : {}),
    });
    await client.query('COMMIT');
    return { deltaVersion: feed.endVersion, ...result };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

async function applyFeed(
  client: pg.ClientBase,
  feed: ChangeFeed,
  target: SyncTarget,
  layout: TargetLayout,
): Promise<Omit<ChangesResult, 'deltaVersion'>> {
  const keys = keyList(layout);
  const columns = columnList(layout.columns);
  await client.query(
    `CREATE TEMP TABLE pier_changes (pier_version bigint, pier_rank smallint, pier_seq bigint, pier_op "char", ${columnDefinitions(layout.columns)}) ON COMMIT DROP`,
  );
  const encoder = new CopyBinaryEncoder(copyColumns(layout.columns), {
    keys: layout.primaryKey.map((column) => column.name),
    prefixFields: 4,
  });
  let seq = 0;
  let changes = 0;
  // Rows written per operation: statements with nothing to do are not run.
  const written = { d: 0, i: 0, u: 0 };
  async function* data(): AsyncGenerator<Buffer> {
    const out = new CopyBinaryWriter();
    out.header();
    for await (const batch of feed.columnBatches()) {
      const changeType = batchColumn(batch, '_change_type');
      const version = constantField(
        { type: 'long' },
        '_commit_version',
        batchColumn(batch, '_commit_version').constant,
      );
      let type: DeltaValue = null;
      // Change types are dictionary-encoded: the same few byte arrays, decoded once each.
      const decoded = new Map<unknown, DeltaValue>();
      const typeOf = (raw: unknown) => {
        let text = decoded.get(raw);
        if (text === undefined) {
          text = changeType.convert(raw);
          if (decoded.size < 16) decoded.set(raw, text);
        }
        return text;
      };
      encoder.encode(out, batch, {
        skip(position) {
          type = changeType.raw ? typeOf(changeType.raw[position]) : changeType.constant;
          if (type === 'update_preimage') return true;
          changes++;
          return false;
        },
        write(out) {
          const op = type === 'delete' ? 'd' : type === 'insert' ? 'i' : 'u';
          written[op]++;
          // Within one commit a key's delete comes before its insert (a rewrite of the same key).
          out.reserve(version.length + 23);
          out.bytes(version);
          out.int32(2);
          out.int16(type === 'delete' ? 0 : 1);
          out.int32(8);
          out.int64Number(seq++);
          out.int32(1);
          out.byte(op.charCodeAt(0));
        },
      });
      yield* out.take();
    }
    out.trailer();
    yield* out.take();
  }
  await copyInto(
    client,
    `COPY pier_changes (pier_version, pier_rank, pier_seq, pier_op, ${columns}) FROM STDIN (FORMAT binary)`,
    data(),
  );
  const skippedNullKeys = encoder.skippedNullKeys;
  await client.query(
    `CREATE TEMP TABLE pier_last ON COMMIT DROP AS
       SELECT DISTINCT ON (${keys}) * FROM pier_changes
        ORDER BY ${keys}, pier_version DESC, pier_rank DESC, pier_seq DESC`,
  );
  const keyMatch = layout.primaryKey
    .map((column) => `t.${pg.escapeIdentifier(column.name)} = c.${pg.escapeIdentifier(column.name)}`)
    .join(' AND ');
  // Only an insert can give a key a second live row.
  if (!layout.timeseriesKey && written.i > 0) await assertKeysStayUnique(client, target, layout, keyMatch);
  const deleted =
    written.d === 0
      ? 0
      : ((
          await client.query(
            `DELETE FROM ${qualified(target)} t USING pier_last c WHERE c.pier_op = 'd' AND ${keyMatch}`,
          )
        ).rowCount ?? 0);
  const updates = layout.columns
    .filter((column) => !column.primaryKey)
    .map((column) => `${pg.escapeIdentifier(column.name)} = EXCLUDED.${pg.escapeIdentifier(column.name)}`);
  const onConflict =
    updates.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${updates.join(', ')}${
          layout.timeseriesKey
            ? ` WHERE ${qualified(target)}.${pg.escapeIdentifier(layout.timeseriesKey.name)} IS NULL OR ${qualified(target)}.${pg.escapeIdentifier(layout.timeseriesKey.name)} <= EXCLUDED.${pg.escapeIdentifier(layout.timeseriesKey.name)}`
            : ''
        }`;
  const upserted =
    written.i + written.u === 0
      ? 0
      : ((
          await client.query(
            `INSERT INTO ${qualified(target)} (${columns})
               SELECT ${columns} FROM pier_last WHERE pier_op <> 'd'
               ON CONFLICT (${keys}) ${onConflict}`,
          )
        ).rowCount ?? 0);
  return { changes, upserted, deleted, skippedNullKeys };
}

/**
 * A key inserted while a row with it is live means the source holds the key
 * twice. Counted per key over the batch: live before (0 or 1), plus inserts,
 * minus deletes, must stay at most 1; only keys with more inserts than
 * deletes can break that, so only those are looked up in the table.
 */
async function assertKeysStayUnique(
  client: pg.ClientBase,
  target: SyncTarget,
  layout: TargetLayout,
  keyMatch: string,
): Promise<void> {
  const keys = keyList(layout);
  const { rows } = await client.query<{ key: string }>(
    `SELECT row(${layout.primaryKey.map((column) => `c.${pg.escapeIdentifier(column.name)}`).join(', ')})::text AS key
       FROM (SELECT ${keys}, sum(CASE pier_op WHEN 'i' THEN 1 WHEN 'd' THEN -1 ELSE 0 END) AS net
               FROM pier_changes GROUP BY ${keys}
             HAVING sum(CASE pier_op WHEN 'i' THEN 1 WHEN 'd' THEN -1 ELSE 0 END) > 0) c
      WHERE c.net + (SELECT count(*) FROM ${qualified(target)} t WHERE ${keyMatch}) > 1
      LIMIT 1`,
  );
  if (rows[0]) {
    throw new PierError(
      'INVALID_STATE',
      `PRIMARY_KEY_CONSTRAINT_VIOLATION: the source now has more than one row with primary key (${layout.primaryKey.map((c) => c.name).join(', ')}) = ${rows[0].key}. Make the key unique in the source, or set a timeseries_key so the latest row of each key wins; then run a full refresh.`,
    );
  }
}

function batchColumn(batch: ColumnBatch, name: string) {
  const column = batch.columns.find((c) => c.name === name);
  if (!column) throw new Error(`change batch without ${name}`);
  return column;
}
