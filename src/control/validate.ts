import { invalidParameter } from '../errors.js';

/**
 * Field checks for request bodies. Each throws INVALID_PARAMETER_VALUE naming
 * the field, what was wrong and what is accepted.
 */
export function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw invalidParameter(`Field '${field}' must be a string, got ${describe(value)}.`);
  return value;
}

export function optionalBoolean(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean')
    throw invalidParameter(`Field '${field}' must be true or false, got ${describe(value)}.`);
  return value;
}

export function optionalInteger(body: Record<string, unknown>, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  const number = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number)) {
    throw invalidParameter(`Field '${field}' must be an integer, got ${describe(value)}.`);
  }
  return number;
}

export function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidParameter(`${what} must be a JSON object, got ${describe(value)}.`);
  }
  return value as Record<string, unknown>;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * A whole-number query parameter from `min` to `max`, `fallback` when absent;
 * INVALID_PARAMETER_VALUE otherwise.
 *
 * @example
 * const minutes = wholeNumberParam(c.req.query('minutes'), 'minutes', { min: 1, max: 1440, fallback: 60 });
 */
export function wholeNumberParam(
  raw: string | undefined,
  field: string,
  range: { min: number; max: number; fallback: number },
): number {
  if (raw === undefined) return range.fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw invalidParameter(
      `${field} must be a whole number from ${range.min} to ${range.max}, got '${raw}'.`,
    );
  }
  return value;
}
