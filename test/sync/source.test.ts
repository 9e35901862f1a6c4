import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkSource } from '../../src/sync/source.js';

/** Creation rules that read the source's Delta log, on hand-written logs. */

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function deltaLog(fields: { name: string; type: string }[], configuration: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'pier-source-'));
  dirs.push(dir);
  await mkdir(join(dir, '_delta_log'));
  const schemaString = JSON.stringify({
    type: 'struct',
    fields: fields.map((f) => ({ ...f, nullable: true, metadata: {} })),
  });
  const actions = [
    { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
    {
      metaData: {
        id: 'a',
        format: { provider: 'parquet', options: {} },
        schemaString,
        partitionColumns: [],
        configuration,
        createdTime: 0,
      },
    },
  ];
  await writeFile(
    join(dir, '_delta_log', '00000000000000000000.json'),
    `${actions.map((a) => JSON.stringify(a)).join('\n')}\n`,
  );
  return dir;
}

const CDF = { 'delta.enableChangeDataFeed': 'true' };

test('VARIANT, GEOGRAPHY and GEOMETRY columns are refused before anything is read', async () => {
  for (const type of ['variant', 'geography(4326)', 'geometry(OGC:CRS84)']) {
    const path = await deltaLog(
      [
        { name: 'id', type: 'long' },
        { name: 'v', type },
      ],
      CDF,
    );
    await assert.rejects(
      checkSource({ path, sourceName: 'c.s.t', primaryKey: ['id'], policy: 'SNAPSHOT' }),
      (error: Error) => error.message.includes(`has a ${type.toUpperCase()} column`),
    );
  }
});

test('TRIGGERED and CONTINUOUS need the Change Data Feed; SNAPSHOT does not', async () => {
  const path = await deltaLog([{ name: 'id', type: 'long' }], {});
  for (const policy of ['TRIGGERED', 'CONTINUOUS'] as const) {
    await assert.rejects(
      checkSource({ path, sourceName: 'c.s.t', primaryKey: ['id'], policy }),
      /delta\.enableChangeDataFeed/,
    );
  }
  await checkSource({ path, sourceName: 'c.s.t', primaryKey: ['id'], policy: 'SNAPSHOT' });
  const withCdf = await deltaLog([{ name: 'id', type: 'long' }], CDF);
  await checkSource({ path: withCdf, sourceName: 'c.s.t', primaryKey: ['id'], policy: 'CONTINUOUS' });
});

test('the primary key and the timeseries key must be columns of the source', async () => {
  const path = await deltaLog(
    [
      { name: 'id', type: 'long' },
      { name: 'at', type: 'timestamp' },
    ],
    CDF,
  );
  await assert.rejects(
    checkSource({ path, sourceName: 'c.s.t', primaryKey: [], policy: 'SNAPSHOT' }),
    /needs a primary key/,
  );
  await assert.rejects(
    checkSource({ path, sourceName: 'c.s.t', primaryKey: ['nope'], policy: 'SNAPSHOT' }),
    /Primary key column 'nope' is not a column of c\.s\.t/,
  );
  await assert.rejects(
    checkSource({ path, sourceName: 'c.s.t', primaryKey: ['id'], timeseriesKey: 'when', policy: 'SNAPSHOT' }),
    /Timeseries key column 'when'/,
  );
  await checkSource({
    path,
    sourceName: 'c.s.t',
    primaryKey: ['id'],
    timeseriesKey: 'at',
    policy: 'SNAPSHOT',
  });
});
