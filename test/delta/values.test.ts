import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePartitionValue, toSparkJson } from '../../src/delta/index.js';
import { formatDecimal, parseDecimal } from '../../src/delta/values.js';

describe('Partition values (PROTOCOL.md "Partition Value Serialization")', () => {
  it('reads null, the empty string and the Hive default partition as null', () => {
    for (const text of [null, undefined, '', '__HIVE_DEFAULT_PARTITION__']) {
      assert.equal(parsePartitionValue({ type: 'integer' }, text), null);
      assert.equal(parsePartitionValue({ type: 'string' }, text), null);
    }
  });

  it('types values by the schema', () => {
    assert.equal(parsePartitionValue({ type: 'string' }, 'a b%3A'), 'a b%3A');
    assert.equal(parsePartitionValue({ type: 'string' }, 'null'), 'null');
    assert.equal(parsePartitionValue({ type: 'integer' }, '-7'), -7);
    assert.equal(parsePartitionValue({ type: 'long' }, '9223372036854775807'), 9223372036854775807n);
    assert.equal(parsePartitionValue({ type: 'double' }, '1.5'), 1.5);
    assert.equal(parsePartitionValue({ type: 'boolean' }, 'true'), true);
    assert.equal(parsePartitionValue({ type: 'date' }, '2021-09-08'), '2021-09-08');
    assert.equal(parsePartitionValue({ type: 'decimal', precision: 12, scale: 2 }, '-3.5'), '-3.50');
    assert.equal(
      parsePartitionValue(
        { type: 'decimal', precision: 38, scale: 18 },
        '12345678901234567890.123456789012345678',
      ),
      '12345678901234567890.123456789012345678',
    );
    assert.deepEqual(parsePartitionValue({ type: 'binary' }, '\u0001\u0002'), Uint8Array.of(1, 2));
  });

  it('reads timestamps with and without a zone', () => {
    const ts = { type: 'timestamp' as const };
    assert.equal(parsePartitionValue(ts, '2021-09-08 11:11:11'), '2021-09-08T11:11:11.000000Z');
    assert.equal(parsePartitionValue(ts, '1970-01-01 00:00:00.123456'), '1970-01-01T00:00:00.123456Z');
    assert.equal(parsePartitionValue(ts, '1970-01-01T00:00:00.123456Z'), '1970-01-01T00:00:00.123456Z');
    assert.equal(
      parsePartitionValue(ts, '2021-09-08 11:11:11', 'America/Los_Angeles'),
      '2021-09-08T18:11:11.000000Z',
    );
    assert.equal(
      parsePartitionValue(ts, '2021-01-08 11:11:11', 'America/Los_Angeles'),
      '2021-01-08T19:11:11.000000Z',
    );
    assert.equal(
      parsePartitionValue({ type: 'timestamp_ntz' }, '2013-07-05 17:01:00.123456'),
      '2013-07-05T17:01:00.123456',
    );
  });

  it('keeps decimals exact', () => {
    assert.equal(formatDecimal(parseDecimal('0.01', 2), 2), '0.01');
    assert.equal(formatDecimal(parseDecimal('-0.5', 3), 3), '-0.500');
    assert.equal(formatDecimal(parseDecimal('1E+2', 0), 0), '100');
    assert.throws(() => parseDecimal('1.234', 2), /more than 2 decimals/);
  });
});

describe("Rendering as Spark's to_json", () => {
  it('renders every type', () => {
    const schema = {
      type: 'struct' as const,
      fields: [
        { name: 'd', type: { type: 'date' as const }, nullable: true, metadata: {} },
        { name: 't', type: { type: 'timestamp' as const }, nullable: true, metadata: {} },
        { name: 'n', type: { type: 'timestamp_ntz' as const }, nullable: true, metadata: {} },
        {
          name: 'm',
          type: { type: 'decimal' as const, precision: 12, scale: 2 },
          nullable: true,
          metadata: {},
        },
        { name: 'b', type: { type: 'binary' as const }, nullable: true, metadata: {} },
        { name: 'l', type: { type: 'long' as const }, nullable: true, metadata: {} },
        { name: 'f', type: { type: 'float' as const }, nullable: true, metadata: {} },
        { name: 'x', type: { type: 'double' as const }, nullable: true, metadata: {} },
        { name: 's', type: { type: 'string' as const }, nullable: true, metadata: {} },
        {
          name: 'map',
          type: {
            type: 'map' as const,
            keyType: { type: 'integer' as const },
            valueType: { type: 'string' as const },
            valueContainsNull: true,
          },
          nullable: true,
          metadata: {},
        },
        { name: 'z', type: { type: 'string' as const }, nullable: true, metadata: {} },
      ],
    };
    const row = {
      d: '2024-01-02',
      t: '2023-05-31T18:58:33.633123Z',
      n: '2024-09-09T00:00:00.000000',
      m: '1234.50',
      b: Uint8Array.of(1, 2, 3),
      l: 9007199254740993n,
      f: Math.fround(3.4),
      x: 5,
      s: 'a"b',
      map: new Map([[1, 'one']]),
      z: null,
    };
    assert.equal(
      toSparkJson(schema, row),
      '{"d":"2024-01-02","t":"2023-05-31T18:58:33.633Z","n":"2024-09-09T00:00:00.000","m":1234.50,"b":"AQID",' +
        '"l":9007199254740993,"f":3.4,"x":5.0,"s":"a\\"b","map":{"1":"one"}}',
    );
  });
});

describe('dates and timestamps in the first century', () => {
  it('keep their year (not read as 19xx)', () => {
    assert.equal(parsePartitionValue({ type: 'date' }, '0001-01-01'), '0001-01-01');
    assert.equal(parsePartitionValue({ type: 'date' }, '0099-12-31'), '0099-12-31');
    assert.equal(
      parsePartitionValue({ type: 'timestamp' }, '0045-06-07 08:09:10.123456'),
      '0045-06-07T08:09:10.123456Z',
    );
  });
});
