import { PierError } from '../errors.js';

/**
 * Decoder for the bitmaps inside deletion vectors: Delta's
 * `RoaringBitmapArray` (PROTOCOL.md, "Deletion Vector Format") = a magic
 * number followed by a 64-bit roaring bitmap in the portable serialization of
 * the RoaringFormatSpec (buckets of 32-bit roaring bitmaps keyed by the high
 * 32 bits). Written from the two specs; no native dependency.
 */

/** First four bytes (little endian) of every Delta deletion vector bitmap. */
export const ROARING_BITMAP_ARRAY_MAGIC = 1681511377;

const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;
const SERIAL_COOKIE = 12347;
const NO_OFFSET_THRESHOLD = 4;
const ARRAY_CONTAINER_MAX = 4096;

/**
 * Decodes a `RoaringBitmapArray` into its values (row indexes), ascending.
 *
 * @example
 * const deleted = decodeRoaringBitmapArray(bytes); // e.g. [3, 4, 7, 11, 18, 29]
 */
export function decodeRoaringBitmapArray(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 12) throw corrupt('it is shorter than its header');
  const magic = view.getUint32(0, true);
  if (magic !== ROARING_BITMAP_ARRAY_MAGIC) {
    throw corrupt(`its magic number is ${magic}, expected ${ROARING_BITMAP_ARRAY_MAGIC}`);
  }
  const buckets = Number(view.getBigUint64(4, true));
  const values: number[] = [];
  let offset = 12;
  for (let bucket = 0; bucket < buckets; bucket++) {
    const high = view.getUint32(offset, true);
    offset = decodeRoaring32(view, offset + 4, high * 2 ** 32, values);
  }
  return values;
}

/**
 * Decodes one 32-bit roaring bitmap starting at `start`, pushing
 * `base + value` for each value; returns the offset just past it.
 */
function decodeRoaring32(view: DataView, start: number, base: number, out: number[]): number {
  let offset = start;
  const cookie = view.getUint32(offset, true);
  offset += 4;
  let containers: number;
  let runFlags: Uint8Array | null = null;
  let hasOffsets: boolean;
  if (cookie === SERIAL_COOKIE_NO_RUNCONTAINER) {
    containers = view.getUint32(offset, true);
    offset += 4;
    hasOffsets = true;
  } else if ((cookie & 0xffff) === SERIAL_COOKIE) {
    containers = (cookie >>> 16) + 1;
    const flagBytes = Math.ceil(containers / 8);
    runFlags = new Uint8Array(view.buffer, view.byteOffset + offset, flagBytes);
    offset += flagBytes;
    hasOffsets = containers >= NO_OFFSET_THRESHOLD;
  } else {
    throw corrupt(`a 32-bit bitmap has the unknown cookie ${cookie}`);
  }
  const keys: number[] = [];
  const cardinalities: number[] = [];
  for (let i = 0; i < containers; i++) {
    keys.push(view.getUint16(offset, true));
    cardinalities.push(view.getUint16(offset + 2, true) + 1);
    offset += 4;
  }
  if (hasOffsets) offset += 4 * containers;
  for (let i = 0; i < containers; i++) {
    const containerBase = base + keys[i] * 65536;
    const isRun = runFlags !== null && (runFlags[i >> 3] & (1 << (i & 7))) !== 0;
    if (isRun) {
      const runs = view.getUint16(offset, true);
      offset += 2;
      for (let r = 0; r < runs; r++) {
        const runStart = view.getUint16(offset, true);
        const length = view.getUint16(offset + 2, true);
        offset += 4;
        for (let v = runStart; v <= runStart + length; v++) out.push(containerBase + v);
      }
    } else if (cardinalities[i] <= ARRAY_CONTAINER_MAX) {
      for (let j = 0; j < cardinalities[i]; j++) {
        out.push(containerBase + view.getUint16(offset, true));
        offset += 2;
      }
    } else {
      for (let word = 0; word < 2048; word++) {
        let bits = view.getUint32(offset, true);
        offset += 4;
        while (bits !== 0) {
          const lowest = bits & -bits;
          out.push(containerBase + word * 32 + (31 - Math.clz32(lowest)));
          bits ^= lowest;
        }
      }
    }
  }
  return offset;
}

function corrupt(reason: string): PierError {
  return new PierError('INVALID_STATE', `Deletion vector is corrupt: ${reason}.`);
}
