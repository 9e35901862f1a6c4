import { PierError } from '../errors.js';
import type { DeltaType } from './schema.js';

/**
 * How Delta values look in JavaScript rows (exact, and ready for Postgres
 * text input):
 *
 * | Delta type | JS value |
 * |---|---|
 * | boolean | `boolean` |
 * | byte, short, integer, float, double | `number` |
 * | long | `bigint` |
 * | decimal(p,s) | `string` with exactly `s` fraction digits, e.g. `"-12.50"` |
 * | string | `string` |
 * | binary | `Uint8Array` |
 * | date | `string` `"yyyy-MM-dd"` |
 * | timestamp | `string` `"yyyy-MM-ddTHH:mm:ss.SSSSSSZ"` (UTC) |
 * | timestamp_ntz | `string` `"yyyy-MM-ddTHH:mm:ss.SSSSSS"` |
 * | struct | plain object keyed by logical field name |
 * | array | `Array` |
 * | map | `Map` |
 *
 * Null is `null`.
 */
export type DeltaValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | DeltaValue[]
  | Map<DeltaValue, DeltaValue>
  | { [field: string]: DeltaValue };

/** A row keyed by logical column name. */
export type DeltaRow = Record<string, DeltaValue>;

const MICROS_PER_DAY = 86_400_000_000n;
const dateCache = new Map<number, string>();

/** Days since 1970-01-01 → `yyyy-MM-dd`. */
export function formatDate(days: number): string {
  let text = dateCache.get(days);
  if (text === undefined) {
    const iso = new Date(days * 86_400_000).toISOString();
    text = iso.slice(0, iso.indexOf('T'));
    if (dateCache.size > 100_000) dateCache.clear();
    dateCache.set(days, text);
  }
  return text;
}

/** Microseconds since the epoch → ISO-8601 with six fraction digits (`Z` when `utc`). */
export function formatTimestamp(micros: bigint, utc: boolean): string {
  let days = micros / MICROS_PER_DAY;
  let inDay = micros % MICROS_PER_DAY;
  if (inDay < 0n) {
    inDay += MICROS_PER_DAY;
    days -= 1n;
  }
  return formatTimestampParts(Number(days), Number(inDay), utc);
}

/** Same as {@link formatTimestamp} for microseconds that fit a double exactly. */
export function formatTimestampNumber(micros: number, utc: boolean): string {
  const days = Math.floor(micros / 86_400_000_000);
  return formatTimestampParts(days, micros - days * 86_400_000_000, utc);
}

function formatTimestampParts(days: number, inDay: number, utc: boolean): string {
  const seconds = Math.floor(inDay / 1_000_000);
  const fraction = inDay - seconds * 1_000_000;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${formatDate(days)}T${two(h)}:${two(m)}:${two(s)}.${String(fraction).padStart(6, '0')}${utc ? 'Z' : ''}`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Unscaled integer and scale → exact decimal text, e.g. (-1250n, 2) → "-12.50". */
export function formatDecimal(unscaled: bigint, scale: number): string {
  if (scale === 0) return unscaled.toString();
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

/** Decimal text → unscaled integer at `scale` (rounding is an error: values must fit). */
export function parseDecimal(text: string, scale: number): bigint {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) throw new PierError('INVALID_STATE', `'${text}' is not a decimal number.`);
  const [, sign, whole = '', fractionText = '', exponentText] = match;
  let digits = `${whole}${fractionText}`;
  let exponent = (exponentText ? Number(exponentText) : 0) - fractionText.length + scale;
  if (exponent < 0) {
    const dropped = digits.slice(digits.length + exponent);
    if (/[1-9]/.test(dropped))
      throw new PierError('INVALID_STATE', `'${text}' has more than ${scale} decimals.`);
    digits = digits.slice(0, digits.length + exponent);
    exponent = 0;
  }
  const unscaled = BigInt(digits === '' ? '0' : digits) * 10n ** BigInt(exponent);
  return sign === '-' ? -unscaled : unscaled;
}

/**
 * Timestamp text → microseconds since the epoch. Accepts the partition value
 * forms of PROTOCOL.md ("yyyy-MM-dd HH:mm:ss[.ffffff]" and ISO-8601 with `Z`
 * or an offset); text without a zone is read as UTC.
 */
export function parseTimestamp(text: string, timeZone?: string): bigint {
  const match =
    /^(-?\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(
      text.trim(),
    );
  if (!match) throw new PierError('INVALID_STATE', `'${text}' is not a timestamp.`);
  const [, year, month, day, hour = '0', minute = '0', second = '0', fraction = '', zone] = match;
  // Not Date.UTC: it reads years 0–99 as 1900–1999.
  const instant = new Date(0);
  instant.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  instant.setUTCHours(Number(hour), Number(minute), Number(second), 0);
  const millis = instant.getTime();
  let micros = BigInt(millis) * 1000n + BigInt(fraction.padEnd(6, '0').slice(0, 6) || '0');
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1n : 1n;
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = BigInt(Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2)));
    micros -= sign * offsetMinutes * 60_000_000n;
  } else if (!zone && timeZone && timeZone !== 'UTC') {
    micros -= BigInt(zoneOffsetMillis(timeZone, Number(micros / 1000n))) * 1000n;
  }
  return micros;
}

/** Offset of `timeZone` from UTC (ms) at the wall-clock time `wallMillis` written as if it were UTC. */
function zoneOffsetMillis(timeZone: string, wallMillis: number): number {
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch (error) {
    throw new PierError('INVALID_PARAMETER_VALUE', `'${timeZone}' is not a time zone name.`, {
      cause: error,
    });
  }
  const offsetAt = (instant: number) => {
    const parts = Object.fromEntries(
      formatter.formatToParts(new Date(instant)).map((p) => [p.type, Number(p.value)]),
    );
    const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
    return asUtc - Math.floor(instant / 1000) * 1000;
  };
  // Two rounds settle the offset except inside a DST gap, where the earlier offset wins.
  const first = offsetAt(wallMillis);
  return offsetAt(wallMillis - first);
}

/** Date text (`yyyy-MM-dd`, optionally followed by a time) → days since the epoch. */
export function parseDate(text: string): number {
  const micros = parseTimestamp(text);
  return Number((micros - (((micros % MICROS_PER_DAY) + MICROS_PER_DAY) % MICROS_PER_DAY)) / MICROS_PER_DAY);
}

/**
 * A serialized partition value ("Partition Value Serialization") → its
 * typed value. Null, the empty string and Hive's default partition marker
 * are all null. A `timestamp` written without a zone is wall-clock time of
 * the writer's zone (PROTOCOL.md); `timeZone` names it (default UTC).
 */
export function parsePartitionValue(
  type: DeltaType,
  text: string | null | undefined,
  timeZone?: string,
): DeltaValue {
  if (text === null || text === undefined || text === '' || text === '__HIVE_DEFAULT_PARTITION__')
    return null;
  switch (type.type) {
    case 'string':
      return text;
    case 'byte':
    case 'short':
    case 'integer':
    case 'float':
    case 'double':
      return Number(text);
    case 'long':
      return BigInt(text);
    case 'boolean':
      return text.toLowerCase() === 'true';
    case 'decimal':
      return formatDecimal(parseDecimal(text, type.scale), type.scale);
    case 'date':
      return formatDate(parseDate(text));
    case 'timestamp':
      return formatTimestamp(parseTimestamp(text, timeZone), true);
    case 'timestamp_ntz':
      return formatTimestamp(parseTimestamp(text), false);
    case 'binary':
      return Uint8Array.from(text, (char) => char.charCodeAt(0));
    default:
      throw new PierError('INVALID_STATE', `A ${type.type} column cannot be a partition column.`);
  }
}

/**
 * A value as Spark's `to_json` writes it: dates `yyyy-MM-dd`, timestamps
 * `yyyy-MM-dd'T'HH:mm:ss.SSSXXX` (UTC), decimals as JSON numbers keeping
 * their scale, binary as base64, maps as objects, nulls omitted from structs.
 */
export function toSparkJson(type: DeltaType, value: DeltaValue): string {
  if (value === null || value === undefined) return 'null';
  switch (type.type) {
    case 'string':
      return JSON.stringify(value);
    case 'long':
    case 'byte':
    case 'short':
    case 'integer':
    case 'decimal':
      return String(value);
    case 'float':
      return jsonNumber(shortestFloat32(value as number));
    case 'double':
      return jsonNumber(String(value));
    case 'boolean':
      return value ? 'true' : 'false';
    case 'binary':
      return JSON.stringify(Buffer.from(value as Uint8Array).toString('base64'));
    case 'date':
      return JSON.stringify(value);
    case 'timestamp':
    case 'timestamp_ntz': {
      const text = value as string;
      const dot = text.indexOf('.');
      return JSON.stringify(`${text.slice(0, dot + 4)}${type.type === 'timestamp' ? 'Z' : ''}`);
    }
    case 'struct': {
      const record = value as Record<string, DeltaValue>;
      const parts: string[] = [];
      for (const field of type.fields) {
        const fieldValue = record[field.name];
        if (fieldValue === null || fieldValue === undefined) continue;
        parts.push(`${JSON.stringify(field.name)}:${toSparkJson(field.type, fieldValue)}`);
      }
      return `{${parts.join(',')}}`;
    }
    case 'array':
      return `[${(value as DeltaValue[]).map((item) => toSparkJson(type.elementType, item)).join(',')}]`;
    case 'map': {
      const parts: string[] = [];
      for (const [key, item] of value as Map<DeltaValue, DeltaValue>) {
        const keyText = typeof key === 'string' ? key : toSparkJson(type.keyType, key);
        parts.push(`${JSON.stringify(keyText)}:${toSparkJson(type.valueType, item)}`);
      }
      return `{${parts.join(',')}}`;
    }
  }
}

/** Java's `Double.toString`: NaN and infinities quoted (as Spark does), ".0" on integers, E notation outside [1e-3, 1e7). */
function jsonNumber(text: string): string {
  const value = Number(text);
  if (!Number.isFinite(value)) return JSON.stringify(text);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e7)) {
    const [mantissa, exponent] = value.toExponential().split('e');
    return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${Number(exponent)}`;
  }
  return Number.isInteger(value) ? `${value}.0` : text;
}

function shortestFloat32(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  for (let digits = 1; digits <= 9; digits++) {
    const text = String(Number(value.toPrecision(digits)));
    if (Math.fround(Number(text)) === value) return text;
  }
  return String(value);
}
