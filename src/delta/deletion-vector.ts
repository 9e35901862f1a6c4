import * as zlib from 'node:zlib';
import { PierError } from '../errors.js';
import type { DeletionVectorDescriptor } from './actions.js';
import { decodeRoaringBitmapArray } from './roaring.js';
import type { TableStorage } from './storage.js';

/**
 * Deletion vectors (PROTOCOL.md, "Deletion Vectors"): the row indexes of a
 * data file that are logically deleted, stored inline in the log (`i`, Z85)
 * or in a `.bin` file beside the data (`u`: path derived from a UUID, `p`:
 * absolute path).
 */

const Z85_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_VALUES = new Int16Array(128).fill(-1);
for (let i = 0; i < Z85_ALPHABET.length; i++) Z85_VALUES[Z85_ALPHABET.charCodeAt(i)] = i;

/**
 * Decodes Z85 (ZeroMQ base85): every 5 characters → 4 bytes, big endian.
 * Also accepts the padded tail of the Rust `z85` crate (used by
 * delta-kernel-rs writers): a chunk starting with `#` (never valid Z85, as
 * it would exceed 2^32) drops one byte per leading `#`.
 */
export function decodeZ85(text: string): Uint8Array {
  if (text.length % 5 !== 0) throw new PierError('INVALID_STATE', 'Z85 text length is not a multiple of 5.');
  const out = new Uint8Array((text.length / 5) * 4);
  const view = new DataView(out.buffer);
  let length = 0;
  for (let i = 0; i < text.length; i += 5) {
    let missing = 0;
    while (missing < 4 && text[i + missing] === '#') missing++;
    let value = 0;
    for (let j = missing; j < 5; j++) {
      const digit = Z85_VALUES[text.charCodeAt(i + j)] ?? -1;
      if (digit < 0) throw new PierError('INVALID_STATE', `'${text[i + j]}' is not a Z85 character.`);
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) throw new PierError('INVALID_STATE', 'Z85 chunk exceeds 32 bits.');
    view.setUint32(length, value);
    // A padded tail keeps only its low-order bytes.
    if (missing > 0) out.copyWithin(length, length + missing, length + 4);
    length += 4 - missing;
  }
  return out.subarray(0, length);
}

/** The `uniqueId` derived field: tells apart the same file with different DVs in log replay. */
export function deletionVectorUniqueId(dv: DeletionVectorDescriptor | undefined): string {
  if (!dv) return '';
  return dv.offset === undefined
    ? `${dv.storageType}${dv.pathOrInlineDv}`
    : `${dv.storageType}${dv.pathOrInlineDv}@${dv.offset}`;
}

/** Table-relative (or absolute) path of an on-disk deletion vector. */
export function deletionVectorPath(dv: DeletionVectorDescriptor): string {
  if (dv.storageType === 'p') return decodeURIComponent(dv.pathOrInlineDv);
  if (dv.storageType !== 'u') throw new PierError('INVALID_STATE', 'An inline deletion vector has no path.');
  const encoded = dv.pathOrInlineDv;
  const prefix = encoded.slice(0, encoded.length - 20);
  const uuid = Buffer.from(decodeZ85(encoded.slice(-20))).toString('hex');
  const name = `deletion_vector_${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20)}.bin`;
  return prefix ? `${prefix}/${name}` : name;
}

/**
 * Reads and decodes a deletion vector: the deleted row indexes, ascending.
 *
 * @example
 * const deleted = await loadDeletionVector(storage, add.deletionVector);
 */
export async function loadDeletionVector(
  storage: TableStorage,
  dv: DeletionVectorDescriptor,
): Promise<number[]> {
  if (dv.storageType === 'i') {
    return checkCardinality(
      dv,
      decodeRoaringBitmapArray(decodeZ85(dv.pathOrInlineDv).subarray(0, dv.sizeInBytes)),
    );
  }
  if (dv.storageType !== 'u' && dv.storageType !== 'p') {
    throw new PierError(
      'NOT_IMPLEMENTED',
      `Deletion vector storage type '${dv.storageType}' is not supported.`,
    );
  }
  const path = await locateDeletionVector(storage, dv);
  // Frame of one DV in a `.bin` file (big endian): dataSize, bitmap, CRC-32 of the bitmap.
  const start = dv.offset ?? 1;
  const frame = await storage.readRange(path, start, start + 4 + dv.sizeInBytes + 4);
  if (frame.byteLength < 8 + dv.sizeInBytes) {
    throw new PierError('INVALID_STATE', `Deletion vector file ${path} is shorter than its descriptor says.`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const dataSize = view.getUint32(0);
  if (dataSize !== dv.sizeInBytes) {
    throw new PierError(
      'INVALID_STATE',
      `Deletion vector in ${path} has size ${dataSize}, expected ${dv.sizeInBytes}.`,
    );
  }
  const bitmap = frame.subarray(4, 4 + dataSize);
  const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (crc32 && crc32(bitmap) >>> 0 !== view.getUint32(4 + dataSize)) {
    throw new PierError('INVALID_STATE', `Deletion vector in ${path} fails its checksum.`);
  }
  return checkCardinality(dv, decodeRoaringBitmapArray(bitmap));
}

/**
 * The DV file's path. Spark's own test tables (e.g. `table-with-dv-large`)
 * add a file-name prefix that the descriptor does not record; when the
 * derived name is missing, a unique file ending in it is accepted.
 */
async function locateDeletionVector(storage: TableStorage, dv: DeletionVectorDescriptor): Promise<string> {
  const path = deletionVectorPath(dv);
  if (dv.storageType !== 'u' || (await storage.exists(path))) return path;
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash);
  const name = path.slice(slash + 1);
  const candidates = (await storage.list(dir)).filter((file) => file.name.endsWith(name));
  if (candidates.length !== 1) {
    throw new PierError(
      'INVALID_STATE',
      `Deletion vector file ${path} of the Delta table at ${storage.location} does not exist; ` +
        'the table may have been vacuumed past this version.',
    );
  }
  return dir ? `${dir}/${candidates[0].name}` : candidates[0].name;
}

function checkCardinality(dv: DeletionVectorDescriptor, rows: number[]): number[] {
  if (rows.length !== dv.cardinality) {
    throw new PierError(
      'INVALID_STATE',
      `Deletion vector holds ${rows.length} rows but its descriptor says ${dv.cardinality}.`,
    );
  }
  return rows;
}
