import { invalidParameter } from '../errors.js';

/** `X/Y`, two hexadecimal halves of 32 bits each, as Postgres prints a pg_lsn. */
const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * A WAL position as a bigint: LSNs pass 2^53, so they never become JS numbers.
 *
 * @example
 * parseLsn('1/0') // 4294967296n
 */
export function parseLsn(text: string): bigint {
  const match = LSN.exec(text);
  if (!match) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** The canonical text of an LSN (upper-case hex, as `pg_current_wal_lsn()` prints it). */
function formatLsn(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Reads an LSN a user sent; a clear 400 when it is not one. */
export function lsnParameter(value: unknown, field: string): string {
  if (typeof value !== 'string' || !LSN.test(value)) {
    throw invalidParameter(
      `${field} must be a Postgres LSN such as "0/16B3748" (two hexadecimal numbers separated by '/'), got ${JSON.stringify(value)}.`,
    );
  }
  return formatLsn(parseLsn(value));
}

/** Pier's WAL segment size (initdb --wal-segsize=1, see engine/local/cluster.ts). */
const WAL_SEGMENT_BYTES = 1n << 20n;
/** Segments per "log id" (the middle 8 hex digits of a segment file name). */
const SEGMENTS_PER_LOG = 0x100000000n / WAL_SEGMENT_BYTES;

/**
 * The LSN just past a WAL segment file.
 *
 * @example
 * segmentEndLsn('000000010000000000000003') // '0/400000'
 */
export function segmentEndLsn(file: string): string {
  const log = BigInt(`0x${file.slice(8, 16)}`);
  const segment = BigInt(`0x${file.slice(16, 24)}`);
  return formatLsn((log * SEGMENTS_PER_LOG + segment + 1n) * WAL_SEGMENT_BYTES);
}
