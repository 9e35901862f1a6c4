/**
 * Binary COPY, value by value: each type's raw forms (as the parquet decoder
 * hands them over) and partition constants go through the encoder into a
 * real Postgres, and what Postgres prints back must be exactly the value.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SchemaTree } from 'hyparquet';
import type pg from 'pg';
import type { BatchColumn, ColumnBatch, DeltaType, DeltaValue } from '../../src/delta/index.js';
import { postgresType } from '../../src/sync/columns.js';
import { CopyBinaryEncoder, CopyBinaryWriter } from '../../src/sync/copy-binary.js';
import { copyInto } from '../../src/sync/target.js';
import { type ScratchPostgres, scratchPostgres } from '../helpers/postgres.js';

let server: ScratchPostgres;
let client: pg.Client;

before(async () => {
  server = await scratchPostgres();
  client = await server.connect();
  await client.query(`SET TIME ZONE 'UTC'`);
});

after(async () => {
  await client?.end();
  await server?.stop();
});

/** A raw column as the reader yields it: `rawScale` is the file's decimal scale. */
function rawColumn(
  type: DeltaType,
  raw: unknown[],
  rawScale = type.type === 'decimal' ? type.scale : 0,
): BatchColumn {
  const node = { element: { name: 'v', scale: rawScale }, children: [], count: 1, path: ['v'] };
  return {
    name: 'v',
    type,
    raw,
    convert: (value) => value as DeltaValue,
    node: node as unknown as SchemaTree,
    constant: null,
  };
}

/** Encodes one column of `type` into a fresh table and reads it back as Postgres prints it. */
async function roundTrip(
  type: DeltaType,
  batches: ColumnBatch[],
  cast = '::text',
): Promise<(string | null)[]> {
  await client.query('DROP TABLE IF EXISTS copied');
  await client.query(`CREATE TABLE copied (n serial, v ${postgresType(type)})`);
  const encoder = new CopyBinaryEncoder([{ name: 'v', type }]);
  const out = new CopyBinaryWriter();
  out.header();
  for (const batch of batches) encoder.encode(out, batch);
  out.trailer();
  async function* data() {
    yield* out.take();
  }
  await copyInto(client, 'COPY copied (v) FROM STDIN (FORMAT binary)', data());
  const { rows } = await client.query<{ v: string | null }>(`SELECT v${cast} AS v FROM copied ORDER BY n`);
  return rows.map((row) => row.v);
}

const batchOf = (column: BatchColumn, length = column.raw?.length ?? 1): ColumnBatch => ({
  length,
  columns: [column],
});

/** One batch of raw values, one batch per constant (a partition value): both must print `expected`. */
async function assertValues(
  type: DeltaType,
  cases: { raw: unknown; constant?: DeltaValue; expected: string | null }[],
  options: { rawScale?: number; cast?: string } = {},
): Promise<void> {
  const expected = cases.map((c) => c.expected);
  const raw = await roundTrip(
    type,
    [
      batchOf(
        rawColumn(
          type,
          cases.map((c) => c.raw),
          options.rawScale,
        ),
      ),
    ],
    options.cast,
  );
  assert.deepEqual(raw, expected);
  const constants = cases.filter((c) => c.constant !== undefined);
  if (constants.length === 0) return;
  const constant = await roundTrip(
    type,
    constants.map((c) =>
      batchOf({ ...rawColumn(type, []), raw: undefined, constant: c.constant as DeltaValue }, 1),
    ),
    options.cast,
  );
  assert.deepEqual(
    constant,
    constants.map((c) => c.expected),
  );
}

test('integers: every width at its limits, 64-bit past 2^53 exact, a widened int in a long column', async () => {
  await assertValues({ type: 'byte' }, [
    { raw: -128, constant: -128, expected: '-128' },
    { raw: 127, expected: '127' },
    { raw: null, constant: null, expected: null },
  ]);
  await assertValues({ type: 'short' }, [
    { raw: -32768, expected: '-32768' },
    { raw: 32767, constant: 32767, expected: '32767' },
  ]);
  await assertValues({ type: 'integer' }, [
    { raw: -2147483648, expected: '-2147483648' },
    { raw: 2147483647, constant: 2147483647, expected: '2147483647' },
    { raw: 0, expected: '0' },
  ]);
  await assertValues({ type: 'long' }, [
    { raw: -9223372036854775808n, constant: -9223372036854775808n, expected: '-9223372036854775808' },
    { raw: 9223372036854775807n, expected: '9223372036854775807' },
    { raw: 9007199254740993n, constant: 9007199254740993n, expected: '9007199254740993' },
    { raw: -9007199254740993n, expected: '-9007199254740993' },
    { raw: 9007199254740991n, expected: '9007199254740991' },
    { raw: -9007199254740991n, expected: '-9007199254740991' },
    { raw: -1n, expected: '-1' },
    { raw: 4294967296n, expected: '4294967296' },
    { raw: -4294967297n, expected: '-4294967297' },
    { raw: -2147483648, expected: '-2147483648' }, // an INT32 file column, widened
    { raw: null, expected: null },
  ]);
});

test('decimals: every scale modulo 4, signs, trailing zeros, 38 digits, INT32/INT64/bytes, widened scale', async () => {
  const p38 = { type: 'decimal', precision: 38, scale: 18 } as const;
  await assertValues(p38, [
    { raw: 0n, constant: '0.000000000000000000', expected: '0.000000000000000000' },
    { raw: -1n, constant: '-0.000000000000000001', expected: '-0.000000000000000001' },
    {
      raw: 99999999999999999999999999999999999999n,
      constant: '99999999999999999999.999999999999999999',
      expected: '99999999999999999999.999999999999999999',
    },
    { raw: -99999999999999999999999999999999999999n, expected: '-99999999999999999999.999999999999999999' },
    { raw: 10n ** 18n, expected: '1.000000000000000000' },
    { raw: 10000n, expected: '0.000000000000010000' },
    // 16 bytes, big-endian two's complement: -2
    { raw: new Uint8Array([...new Array(15).fill(0xff), 0xfe]), expected: '-0.000000000000000002' },
    { raw: null, constant: null, expected: null },
  ]);
  for (const scale of [0, 1, 2, 3, 4, 5, 8]) {
    const type = { type: 'decimal', precision: 18, scale } as const;
    const text = (digits: string) =>
      scale === 0 ? digits : `${digits.slice(0, -scale) || '0'}.${digits.slice(-scale).padStart(scale, '0')}`;
    await assertValues(type, [
      { raw: 123456789012345678n, expected: text('123456789012345678') },
      { raw: -100000000000000000n, expected: `-${text('100000000000000000')}` },
      { raw: 10000, expected: text('10000') }, // INT32 in the file
      { raw: -7, expected: `-${text('7')}` },
      { raw: 0, expected: text('0') },
    ]);
  }
  // The file wrote scale 2, the table's type is scale 4 (type widening): 12.34 → 12.3400.
  await assertValues({ type: 'decimal', precision: 10, scale: 4 }, [{ raw: 1234, expected: '12.3400' }], {
    rawScale: 2,
  });
});

test('floats by their bits: NaN, infinities, -0, subnormals, extremes', async () => {
  await assertValues({ type: 'double' }, [
    { raw: Number.NaN, constant: Number.NaN, expected: 'NaN' },
    { raw: Number.POSITIVE_INFINITY, expected: 'Infinity' },
    { raw: Number.NEGATIVE_INFINITY, expected: '-Infinity' },
    { raw: -0, constant: -0, expected: '-0' },
    { raw: 5e-324, expected: '5e-324' },
    { raw: Number.MAX_VALUE, expected: '1.7976931348623157e+308' },
    { raw: 0.1, expected: '0.1' },
    { raw: Math.fround(0.1), expected: '0.10000000149011612' }, // a float widened to double
  ]);
  await assertValues({ type: 'float' }, [
    { raw: Math.fround(0.1), constant: Math.fround(0.1), expected: '0.1' },
    { raw: Math.fround(3.4028234663852886e38), expected: '3.4028235e+38' },
    { raw: Math.fround(1.401298464324817e-45), expected: '1e-45' },
    { raw: -0, expected: '-0' },
    { raw: Number.NaN, expected: 'NaN' },
  ]);
});

test('dates and timestamps: before 1970 and 2000, year 1 and 9999, microseconds, past 2^53 µs, widened dates', async () => {
  await assertValues({ type: 'date' }, [
    { raw: -719162, constant: '0001-01-01', expected: '0001-01-01' },
    { raw: 2932896, constant: '9999-12-31', expected: '9999-12-31' },
    { raw: 0, expected: '1970-01-01' },
    { raw: 10957, expected: '2000-01-01' },
    { raw: -1, expected: '1969-12-31' },
    { raw: null, expected: null },
  ]);
  await assertValues({ type: 'timestamp' }, [
    {
      raw: 1_709_251_199_999_999n,
      constant: '2024-02-29T23:59:59.999999Z',
      expected: '2024-02-29 23:59:59.999999+00',
    },
    { raw: -1n, constant: '1969-12-31T23:59:59.999999Z', expected: '1969-12-31 23:59:59.999999+00' },
    { raw: 946_684_799_999_999n, expected: '1999-12-31 23:59:59.999999+00' },
    { raw: -62_135_596_800_000_000n, expected: '0001-01-01 00:00:00+00' },
    { raw: 253_402_300_799_999_999n, expected: '9999-12-31 23:59:59.999999+00' },
    { raw: 19_000, expected: '2022-01-08 00:00:00+00' }, // a date column widened to timestamp
  ]);
  await assertValues({ type: 'timestamp_ntz' }, [
    { raw: 9_007_199_254_740_993n, expected: '2255-06-05 23:47:34.740993' },
    { raw: 1n, constant: '1970-01-01T00:00:00.000001', expected: '1970-01-01 00:00:00.000001' },
    { raw: null, constant: null, expected: null },
  ]);
});

test('strings and bytes: as their bytes, hard characters, long values, invalid UTF-8 as U+FFFD; NUL refused', async () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const long = `${'x'.repeat(70)}ü\t\\N`;
  await assertValues({ type: 'string' }, [
    { raw: bytes(''), constant: '', expected: '' },
    { raw: bytes('tab\t, newline\n, cr\r, \\N, "q"'), expected: 'tab\t, newline\n, cr\r, \\N, "q"' },
    { raw: bytes('ünïcødé ✓ 𝄞'), constant: 'ünïcødé ✓ 𝄞', expected: 'ünïcødé ✓ 𝄞' },
    { raw: bytes(long), expected: long },
    { raw: new Uint8Array([0x61, 0xff, 0x62]), expected: 'a\uFFFDb' },
    { raw: new Uint8Array([...bytes('y'.repeat(80)), 0xc3]), expected: `${'y'.repeat(80)}\uFFFD` },
    { raw: 'already a string', expected: 'already a string' },
    { raw: null, expected: null },
  ]);
  const hex = await roundTrip({ type: 'binary' }, [
    batchOf(
      rawColumn({ type: 'binary' }, [
        new Uint8Array([0, 9, 10, 13, 92, 255]),
        new Uint8Array(300).fill(7),
        new Uint8Array([]),
      ]),
    ),
    batchOf({ ...rawColumn({ type: 'binary' }, []), raw: undefined, constant: new Uint8Array([1, 2]) }, 1),
    batchOf(rawColumn({ type: 'binary' }, [null])),
  ]);
  assert.deepEqual(hex, ['\\x00090a0d5cff', `\\x${'07'.repeat(300)}`, '\\x', '\\x0102', null]);
  for (const value of [bytes('a\0b'), bytes(`${'z'.repeat(100)}\0`)]) {
    await assert.rejects(roundTrip({ type: 'string' }, [batchOf(rawColumn({ type: 'string' }, [value]))]), {
      name: 'PierError',
      message: /Column 'v' has a value with a NUL character/,
    });
  }
});

test('booleans, nested values as jsonb, and rows with a null key left out and counted', async () => {
  await assertValues({ type: 'boolean' }, [
    { raw: true, constant: true, expected: 'true' },
    { raw: false, constant: false, expected: 'false' },
    { raw: null, expected: null },
  ]);
  const struct: DeltaType = {
    type: 'struct',
    fields: [
      { name: 'a', type: { type: 'long' }, nullable: true, metadata: {} },
      {
        name: 'b',
        type: { type: 'array', elementType: { type: 'string' }, containsNull: true },
        nullable: true,
        metadata: {},
      },
    ],
  };
  assert.deepEqual(
    await roundTrip(struct, [
      batchOf(rawColumn(struct, [{ a: 9007199254740993n, b: ['x', null, 'ü'] }, null])),
    ]),
    ['{"a": 9007199254740993, "b": ["x", null, "ü"]}', null],
  );
  const encoder = new CopyBinaryEncoder([{ name: 'v', type: { type: 'long' } }], { keys: ['v'] });
  const out = new CopyBinaryWriter();
  const key = rawColumn({ type: 'long' }, [1n, null, 3n, null]);
  assert.equal(encoder.encode(out, { length: 3, positions: Int32Array.from([0, 1, 3]), columns: [key] }), 1);
  assert.equal(encoder.skippedNullKeys, 2);
  assert.equal(encoder.encode(out, batchOf({ ...key, raw: undefined, constant: null }, 5)), 0);
  assert.equal(encoder.skippedNullKeys, 7);
});
