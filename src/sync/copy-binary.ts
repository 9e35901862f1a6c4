import { isUtf8 } from 'node:buffer';
import type { BatchColumn, ColumnBatch, DeltaType, DeltaValue } from '../delta/index.js';
import { toSparkJson } from '../delta/index.js';
import { unscaledDecimal } from '../delta/parquet.js';
import { parseDate, parseDecimal, parseTimestamp } from '../delta/values.js';
import { PierError } from '../errors.js';

/**
 * Postgres binary COPY ("COPY … FROM STDIN (FORMAT binary)", the "Binary
 * Format" section of the COPY reference), written straight from the parquet
 * decoder's columns: no row objects, no text, and nothing for the server to
 * parse. Every value is exact: 64-bit integers and timestamps go through a
 * JS number only when it holds them exactly (|n| < 2^53), decimals are
 * turned into base-10000 digits from their unscaled integer, floats are
 * written by their bits.
 */

/** A column of the COPY, in the order of its column list. */
export interface CopyColumn {
  name: string;
  type: DeltaType;
}

/** The COPY columns of a synced table's columns. */
export function copyColumns(columns: { name: string; field: { type: DeltaType } }[]): CopyColumn[] {
  return columns.map((column) => ({ name: column.name, type: column.field.type }));
}

/** Postgres counts days and microseconds from 2000-01-01. */
const POSTGRES_EPOCH_DAYS = 10_957;
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000;
const POSTGRES_EPOCH_MICROS_BIG = 946_684_800_000_000n;
const MICROS_PER_DAY = 86_400_000_000n;
const TWO_32 = 4_294_967_296;
const NUMERIC_NEGATIVE = 0x4000;
/** Bytes handed to the connection at a time. */
const PIECE_BYTES = 1 << 20;
/** Strings up to this length are copied (and checked) byte by byte; longer ones natively. */
const SHORT_STRING = 64;

/**
 * A growing sequence of COPY bytes, in pieces of about a megabyte: the
 * encoder writes, {@link take} hands over what is complete.
 */
export class CopyBinaryWriter {
  private buffer = Buffer.allocUnsafe(PIECE_BYTES);
  private view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
  private start = 0;
  private position = 0;
  private pieces: Buffer[] = [];

  /** The file header: signature, flags (no OIDs), no header extension. */
  header(): void {
    this.reserve(19);
    this.buffer.write('PGCOPY\n\xff\r\n\0', this.position, 'latin1');
    this.position += 11;
    this.int32(0);
    this.int32(0);
  }

  /** The file trailer. */
  trailer(): void {
    this.reserve(2);
    this.int16(-1);
  }

  /** Makes room for `bytes` more bytes in the current piece. */
  reserve(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    if (this.position > this.start) this.pieces.push(this.buffer.subarray(this.start, this.position));
    this.buffer = Buffer.allocUnsafe(Math.max(PIECE_BYTES, bytes));
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
    this.start = 0;
    this.position = 0;
  }

  /** Everything written so far, as pieces to send; the writer carries on after them. */
  take(): Buffer[] {
    if (this.position > this.start) {
      this.pieces.push(this.buffer.subarray(this.start, this.position));
      this.start = this.position;
    }
    const pieces = this.pieces;
    this.pieces = [];
    return pieces;
  }

  byte(value: number): void {
    this.buffer[this.position++] = value;
  }

  int16(value: number): void {
    this.view.setInt16(this.position, value);
    this.position += 2;
  }

  int32(value: number): void {
    this.view.setInt32(this.position, value);
    this.position += 4;
  }

  /** A 64-bit integer held exactly by a JS number (|value| < 2^53). */
  int64Number(value: number): void {
    const high = Math.floor(value / TWO_32);
    this.view.setInt32(this.position, high);
    this.view.setUint32(this.position + 4, value - high * TWO_32);
    this.position += 8;
  }

  int64(value: bigint): void {
    this.view.setBigInt64(this.position, value);
    this.position += 8;
  }

  float32(value: number): void {
    this.view.setFloat32(this.position, value);
    this.position += 4;
  }

  float64(value: number): void {
    this.view.setFloat64(this.position, value);
    this.position += 8;
  }

  bytes(value: Uint8Array): void {
    this.buffer.set(value, this.position);
    this.position += value.length;
  }

  /**
   * A text field from UTF-8 bytes: its length, then the bytes. Postgres text
   * holds no NUL, so one is refused with what to do; bytes that are not
   * UTF-8 become U+FFFD, as a decoder would make them.
   */
  textField(value: Uint8Array, column: string): void {
    const length = value.length;
    if (length > SHORT_STRING) {
      if (value.indexOf(0) >= 0) throw nulCharacter(column);
      this.bytesField(isUtf8(value) ? value : Buffer.from(utf8.decode(value)));
      return;
    }
    this.reserve(4 + length);
    const buffer = this.buffer;
    let position = this.position + 4;
    let ascii = true;
    for (let i = 0; i < length; i++) {
      const byte = value[i];
      if (byte === 0) throw nulCharacter(column);
      if (byte > 0x7f) ascii = false;
      buffer[position++] = byte;
    }
    if (!ascii && !isUtf8(value)) {
      this.bytesField(Buffer.from(utf8.decode(value)));
      return;
    }
    this.int32(length);
    this.position = position;
  }

  /** A field of raw bytes: its length, then the bytes. */
  bytesField(value: Uint8Array): void {
    this.reserve(4 + value.length);
    this.int32(value.length);
    this.bytes(value);
  }

  /** A NUMERIC field: `unscaled` × 10^-scale, with display scale `scale`. */
  numericField(unscaled: bigint | number, scale: number): void {
    // Base-10000 digits, the decimal point on a digit boundary: pad the scale to a multiple of 4.
    const pad = (4 - (scale % 4)) % 4;
    const fractionDigits = (scale + pad) / 4;
    const negative = unscaled < 0;
    const digits = numericScratch;
    const length = numericDigits(negative ? -unscaled : unscaled, pad);
    // digits are least significant first; trailing zero digits carry nothing.
    let low = 0;
    while (low < length && digits[low] === 0) low++;
    const count = length - low;
    this.reserve(12 + 2 * count);
    this.int32(8 + 2 * count);
    this.int16(count);
    this.int16(count === 0 ? 0 : length - fractionDigits - 1);
    this.int16(negative ? NUMERIC_NEGATIVE : 0);
    this.int16(scale);
    for (let i = length - 1; i >= low; i--) this.int16(digits[i]);
  }

  nullField(): void {
    this.reserve(4);
    this.int32(-1);
  }
}

const utf8 = new TextDecoder();
const POWERS_OF_TEN = [1, 10, 100, 1000];
/** Base-10000 digits of one NUMERIC (a 38-digit decimal has at most 11). */
const numericScratch = new Uint16Array(64);

/** Puts |value| × 10^pad in base 10000 into numericScratch, least significant digit first; returns the count. */
function numericDigits(value: bigint | number, pad: number): number {
  const digits = numericScratch;
  let count = 0;
  if (typeof value === 'number' || value < 9_007_199_254_740_992n) {
    let n = Number(value) * POWERS_OF_TEN[pad];
    if (Number.isSafeInteger(n)) {
      while (n > 0) {
        const next = Math.floor(n / 10_000);
        digits[count++] = n - next * 10_000;
        n = next;
      }
      return count;
    }
  }
  let n = BigInt(value) * BigInt(POWERS_OF_TEN[pad]);
  while (n > 0n) {
    if (count === digits.length)
      throw new PierError('INVALID_STATE', 'A decimal value has more digits than NUMERIC holds.');
    digits[count++] = Number(n % 10_000n);
    n /= 10_000n;
  }
  return count;
}

function nulCharacter(column: string): PierError {
  return new PierError(
    'INVALID_PARAMETER_VALUE',
    `Column '${column}' has a value with a NUL character (\\u0000), which Postgres text cannot hold. Remove it in the source (e.g. replace(col, char(0), '')).`,
  );
}

/** How one column's raw values become fields, decided once per batch. */
interface FieldPlan {
  kind: FieldKind;
  name: string;
  type: DeltaType;
  convert: (raw: unknown) => DeltaValue;
  /** Decimals: the table's scale, and 10^(table scale - file scale) when the file's is smaller. */
  scale: number;
  factor: bigint;
}

enum FieldKind {
  Boolean,
  Int16,
  Int32,
  Date,
  Long,
  Float,
  Double,
  Timestamp,
  Decimal,
  Text,
  Bytes,
  Json,
}

const KINDS: Record<DeltaType['type'], FieldKind> = {
  boolean: FieldKind.Boolean,
  byte: FieldKind.Int16,
  short: FieldKind.Int16,
  integer: FieldKind.Int32,
  date: FieldKind.Date,
  long: FieldKind.Long,
  float: FieldKind.Float,
  double: FieldKind.Double,
  timestamp: FieldKind.Timestamp,
  timestamp_ntz: FieldKind.Timestamp,
  decimal: FieldKind.Decimal,
  string: FieldKind.Text,
  binary: FieldKind.Bytes,
  struct: FieldKind.Json,
  array: FieldKind.Json,
  map: FieldKind.Json,
};

/**
 * The plan for a column of `type` whose raw values are as parquet.ts
 * `converterFor` takes them; `rawScale` is the file's decimal scale.
 */
function fieldPlan(
  type: DeltaType,
  name: string,
  convert: (raw: unknown) => DeltaValue,
  rawScale: number,
): FieldPlan {
  const scale = type.type === 'decimal' ? type.scale : 0;
  return {
    kind: KINDS[type.type],
    name,
    type,
    convert,
    scale,
    factor: 10n ** BigInt(Math.max(0, scale - rawScale)),
  };
}

/** Writes one field (length and value, or -1 for null) from a value as the parquet decoder left it. */
function writeField(out: CopyBinaryWriter, plan: FieldPlan, raw: unknown): void {
  if (raw == null) {
    out.nullField();
    return;
  }
  switch (plan.kind) {
    case FieldKind.Boolean:
      out.reserve(5);
      out.int32(1);
      out.byte(raw ? 1 : 0);
      return;
    case FieldKind.Int16:
      out.reserve(6);
      out.int32(2);
      out.int16(Number(raw));
      return;
    case FieldKind.Int32:
      out.reserve(8);
      out.int32(4);
      out.int32(Number(raw));
      return;
    case FieldKind.Date:
      // Days since 1970 (dateFromDays keeps them as they are).
      out.reserve(8);
      out.int32(4);
      out.int32((raw as number) - POSTGRES_EPOCH_DAYS);
      return;
    case FieldKind.Long: {
      out.reserve(12);
      out.int32(8);
      const n = Number(raw);
      if (Number.isSafeInteger(n)) out.int64Number(n);
      else out.int64(raw as bigint);
      return;
    }
    case FieldKind.Float:
      out.reserve(8);
      out.int32(4);
      out.float32(raw as number);
      return;
    case FieldKind.Double:
      out.reserve(12);
      out.int32(8);
      out.float64(Number(raw));
      return;
    case FieldKind.Timestamp: {
      // Microseconds as a bigint, or days (a date widened to a timestamp).
      out.reserve(12);
      out.int32(8);
      const micros = typeof raw === 'number' ? BigInt(raw) * MICROS_PER_DAY : (raw as bigint);
      const m = Number(micros);
      if (Number.isSafeInteger(m) && Number.isSafeInteger(m - POSTGRES_EPOCH_MICROS))
        out.int64Number(m - POSTGRES_EPOCH_MICROS);
      else out.int64(micros - POSTGRES_EPOCH_MICROS_BIG);
      return;
    }
    case FieldKind.Decimal: {
      const { factor, scale } = plan;
      if (factor === 1n) {
        out.numericField(
          typeof raw === 'number' || typeof raw === 'bigint' ? raw : unscaledDecimal(raw),
          scale,
        );
      } else {
        out.numericField(unscaledDecimal(raw) * factor, scale);
      }
      return;
    }
    case FieldKind.Text:
      out.textField(raw instanceof Uint8Array ? raw : Buffer.from(String(raw)), plan.name);
      return;
    case FieldKind.Bytes:
      out.bytesField(raw instanceof Uint8Array ? raw : Buffer.from(String(raw)));
      return;
    case FieldKind.Json: {
      // jsonb's binary form: version 1, then the JSON text.
      const json = Buffer.from(toSparkJson(plan.type, plan.convert(raw)));
      out.reserve(5 + json.length);
      out.int32(json.length + 1);
      out.byte(1);
      out.bytes(json);
      return;
    }
  }
}

/** A Delta value (values.ts) in the raw form {@link writeField} reads, at the type's own scale. */
function rawForm(type: DeltaType, value: DeltaValue): unknown {
  if (value === null) return null;
  switch (type.type) {
    case 'decimal':
      return parseDecimal(value as string, type.scale);
    case 'date':
      return parseDate(value as string);
    case 'timestamp':
    case 'timestamp_ntz':
      return parseTimestamp(value as string);
    default:
      return value;
  }
}

/**
 * The bytes of one field holding `value`, for a column with one value in
 * every row (a partition value).
 *
 * @example
 * constantField({ type: 'long' }, 'id', 7n) // <00 00 00 08 00 … 07>
 */
export function constantField(type: DeltaType, name: string, value: DeltaValue): Buffer {
  const out = new CopyBinaryWriter();
  const plan = fieldPlan(type, name, (raw) => raw as DeltaValue, type.type === 'decimal' ? type.scale : 0);
  writeField(out, plan, rawForm(type, value));
  return Buffer.concat(out.take());
}

/** Fields a caller puts before each row's columns, and rows it leaves out (by position in the batch's columns). */
export interface RowPrefix {
  skip(position: number): boolean;
  write(out: CopyBinaryWriter, position: number): void;
}

/**
 * Encodes column batches as binary COPY rows of `columns`, in their order,
 * leaving out rows whose key is null.
 *
 * @example
 * const encoder = new CopyBinaryEncoder(columns, { keys: ['id'] });
 * const out = new CopyBinaryWriter();
 * out.header();
 * for await (const batch of snapshot.scanColumns()) encoder.encode(out, batch);
 */
export class CopyBinaryEncoder {
  skippedNullKeys = 0;

  constructor(
    private readonly columns: CopyColumn[],
    private readonly options: { keys: string[]; prefixFields?: number } = { keys: [] },
  ) {}

  /** Writes the rows of `batch`; `prefix` writes fields before each row's columns. Returns the rows written. */
  encode(out: CopyBinaryWriter, batch: ColumnBatch, prefix?: RowPrefix): number {
    const byName = new Map(batch.columns.map((column) => [column.name, column]));
    const sources = this.columns.map((column) => {
      const source = byName.get(column.name);
      if (!source) throw new Error(`column ${column.name} missing from the batch`);
      return source;
    });
    const fields = this.columns.length + (this.options.prefixFields ?? 0);
    const keys = this.options.keys.map((key) => byName.get(key) as BatchColumn);
    if (keys.some((key) => !key.raw && key.constant === null)) {
      for (let r = 0; r < batch.length; r++) {
        if (!prefix?.skip(batch.positions ? batch.positions[r] : r)) this.skippedNullKeys++;
      }
      return 0;
    }
    const keyRaws = keys.flatMap((key) => (key.raw ? [key.raw] : []));
    // Constant columns are encoded once; the others field by field from their raw arrays.
    const constants = sources.map((source, i) =>
      source.raw ? undefined : constantField(this.columns[i].type, this.columns[i].name, source.constant),
    );
    const raws = sources.map((source) => source.raw);
    const plans = sources.map((source, i) =>
      fieldPlan(this.columns[i].type, this.columns[i].name, source.convert, source.node?.element.scale ?? 0),
    );
    const { positions, length } = batch;
    const columnCount = plans.length;
    let written = 0;
    rows: for (let r = 0; r < length; r++) {
      const position = positions ? positions[r] : r;
      if (prefix?.skip(position)) continue;
      for (const raw of keyRaws) {
        if (raw[position] == null) {
          this.skippedNullKeys++;
          continue rows;
        }
      }
      out.reserve(2);
      out.int16(fields);
      prefix?.write(out, position);
      for (let c = 0; c < columnCount; c++) {
        const raw = raws[c];
        if (raw === undefined) {
          const bytes = constants[c] as Buffer;
          out.reserve(bytes.length);
          out.bytes(bytes);
        } else {
          writeField(out, plans[c], raw[position]);
        }
      }
      written++;
    }
    return written;
  }
}
