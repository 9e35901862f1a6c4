import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deletionVectorPath } from '../../src/delta/deletion-vector.js';
import {
  decodeRoaringBitmapArray,
  decodeZ85,
  loadDeletionVector,
  storageFor,
} from '../../src/delta/index.js';
import { ROARING_BITMAP_ARRAY_MAGIC } from '../../src/delta/roaring.js';
import { tableRoot } from './expected.js';

/** Serializes containers in the RoaringFormatSpec layout, to test the decoder against every container kind. */
type Container = { key: number; kind: 'array' | 'bitmap' | 'run'; values: number[] };

function roaring32(containers: Container[], withRuns: boolean): number[] {
  const bytes: number[] = [];
  const u16 = (v: number) => bytes.push(v & 0xff, (v >> 8) & 0xff);
  const u32 = (v: number) => bytes.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  if (withRuns) {
    u32(12347 | ((containers.length - 1) << 16));
    const flags = new Array(Math.ceil(containers.length / 8)).fill(0);
    containers.forEach((c, i) => {
      if (c.kind === 'run') flags[i >> 3] |= 1 << (i & 7);
    });
    bytes.push(...flags);
  } else {
    u32(12346);
    u32(containers.length);
  }
  for (const c of containers) {
    u16(c.key);
    u16(c.values.length - 1);
  }
  if (!withRuns || containers.length >= 4) for (const _ of containers) u32(0); // offsets: unused by the decoder
  for (const c of containers) {
    if (c.kind === 'array') c.values.forEach(u16);
    if (c.kind === 'bitmap') {
      const words = new Uint32Array(2048);
      for (const v of c.values) words[v >> 5] |= 1 << (v & 31);
      for (const w of words) u32(w);
    }
    if (c.kind === 'run') {
      const runs: [number, number][] = [];
      for (const v of c.values) {
        const last = runs.at(-1);
        if (last && last[0] + last[1] + 1 === v) last[1]++;
        else runs.push([v, 0]);
      }
      u16(runs.length);
      for (const [start, length] of runs) {
        u16(start);
        u16(length);
      }
    }
  }
  return bytes;
}

function roaringBitmapArray(
  buckets: { high: number; containers: Container[]; withRuns: boolean }[],
): Uint8Array {
  const bytes: number[] = [];
  const u32 = (v: number) => bytes.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  u32(ROARING_BITMAP_ARRAY_MAGIC);
  u32(buckets.length);
  u32(0);
  for (const bucket of buckets) {
    u32(bucket.high);
    bytes.push(...roaring32(bucket.containers, bucket.withRuns));
  }
  return Uint8Array.from(bytes);
}

describe('RoaringBitmapArray decoder', () => {
  it('decodes array, bitmap and run containers across 64-bit buckets', () => {
    const dense = Array.from({ length: 5000 }, (_, i) => i * 13);
    const runs = [
      ...Array.from({ length: 100 }, (_, i) => i),
      ...Array.from({ length: 10 }, (_, i) => 1000 + i),
    ];
    const bytes = roaringBitmapArray([
      {
        high: 0,
        withRuns: true,
        containers: [
          { key: 0, kind: 'run', values: runs },
          { key: 1, kind: 'array', values: [5, 77] },
          { key: 2, kind: 'bitmap', values: dense },
          { key: 9, kind: 'array', values: [65535] },
        ],
      },
      { high: 1, withRuns: false, containers: [{ key: 0, kind: 'array', values: [7] }] },
    ]);
    assert.deepEqual(decodeRoaringBitmapArray(bytes), [
      ...runs,
      65536 + 5,
      65536 + 77,
      ...dense.map((v) => 2 * 65536 + v),
      9 * 65536 + 65535,
      2 ** 32 + 7,
    ]);
  });

  it('decodes an empty bitmap', () => {
    assert.deepEqual(decodeRoaringBitmapArray(roaringBitmapArray([])), []);
  });

  it('refuses bytes without the magic number', () => {
    const bytes = roaringBitmapArray([]);
    bytes[0] ^= 0xff;
    assert.throws(() => decodeRoaringBitmapArray(bytes), /Deletion vector is corrupt: its magic number is/);
  });
});

describe('Deletion vector descriptors', () => {
  it('decodes Z85 (the RFC 32 test vector)', () => {
    assert.equal(Buffer.from(decodeZ85('HelloWorld')).toString('hex'), '864fd26fb559f75b');
  });

  it('decodes the padded Z85 tail written by delta-kernel-rs', () => {
    const bytes = decodeZ85('^Bg9^0rr910000000000iXQKl0rr91000005c8Xg##093');
    assert.equal(bytes.byteLength, 34);
    assert.deepEqual(decodeRoaringBitmapArray(bytes), [3]);
  });

  it('derives the path of a u deletion vector from its UUID and prefix (PROTOCOL.md example)', () => {
    assert.equal(
      deletionVectorPath({
        storageType: 'u',
        pathOrInlineDv: 'ab^-aqEH.-t@S}K{vb[*k^',
        offset: 4,
        sizeInBytes: 40,
        cardinality: 6,
      }),
      'ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin',
    );
  });

  it('loads an inline (i) deletion vector', async () => {
    const storage = storageFor(tableRoot('cdf-table-with-dv'));
    const dv = {
      storageType: 'i' as const,
      pathOrInlineDv: '^Bg9^0rr910000000000iXQKl0rr91000935c8Xg000311onP9',
      sizeInBytes: 40,
      cardinality: 4,
    };
    assert.deepEqual(await loadDeletionVector(storage, dv), [0, 1, 4, 5]);
  });

  it('loads an on-disk (u) deletion vector and checks its size, checksum and cardinality', async () => {
    const storage = storageFor(tableRoot('table-with-dv-small'));
    const dv = {
      storageType: 'u' as const,
      pathOrInlineDv: 'vBn[lx{q8@P<9BNH/isA',
      offset: 1,
      sizeInBytes: 36,
      cardinality: 2,
    };
    assert.deepEqual(await loadDeletionVector(storage, dv), [0, 9]);
    await assert.rejects(
      loadDeletionVector(storage, { ...dv, cardinality: 3 }),
      /holds 2 rows but its descriptor says 3/,
    );
    await assert.rejects(loadDeletionVector(storage, { ...dv, sizeInBytes: 35 }), /has size 36, expected 35/);
  });

  it('loads an absolute-path (p) deletion vector', async () => {
    const root = tableRoot('table-with-dv-small');
    const storage = storageFor(root);
    const path = deletionVectorPath({
      storageType: 'u',
      pathOrInlineDv: 'vBn[lx{q8@P<9BNH/isA',
      sizeInBytes: 36,
      cardinality: 2,
    });
    const dv = {
      storageType: 'p' as const,
      pathOrInlineDv: `file://${root}/${path}`,
      offset: 1,
      sizeInBytes: 36,
      cardinality: 2,
    };
    assert.deepEqual(await loadDeletionVector(storage, dv), [0, 9]);
  });
});
