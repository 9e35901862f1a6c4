import { describe } from '../control/validate.js';
import { PierError } from '../errors.js';
import { decodePageToken, encodePageToken } from '../pagination.js';

/**
 * Field rules of the Lakebase Autoscaling API (`/api/2.0/postgres`): ids,
 * durations, compute units, update masks. Each throws with Autoscaling's
 * own error codes (INVALID_PARAMETER_VALUE, BAD_REQUEST).
 */

export function invalid(message: string): PierError {
  return new PierError('INVALID_PARAMETER_VALUE', message);
}

export function badRequest(message: string): PierError {
  return new PierError('BAD_REQUEST', message);
}

export function notFound(message: string): PierError {
  return new PierError('NOT_FOUND', message);
}

const ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const OPTIONAL_ID = /^[a-z][a-z0-9-]{2,61}[a-z0-9]$/;

/** `project_id`, `branch_id`, `endpoint_id`: required, 1–63 of [a-z0-9-], starting with a letter. */
export function requiredId(value: string | undefined, field: string): string {
  if (value === undefined || value === '') {
    throw invalid(`Field '${field}' is required, expected non-default value (not "")!`);
  }
  if (!ID.test(value)) {
    throw invalid(
      `${field} ${describe(value)} is invalid: use 1-63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen.`,
    );
  }
  return value;
}

/** `role_id`, `database_id`: optional (derived when absent), 4–63 of [a-z0-9-]. */
export function optionalId(value: string | undefined, field: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!OPTIONAL_ID.test(value)) {
    throw invalid(
      `${field} ${describe(value)} is invalid: use 4-63 lowercase letters, digits and hyphens, starting with a letter.`,
    );
  }
  return value;
}

/** A protobuf Duration as JSON (`"300s"`, `"1.5s"`) in seconds. */
export function parseDuration(value: unknown, field: string): number {
  if (typeof value !== 'string' || !/^\d+(\.\d+)?s$/.test(value)) {
    throw invalid(`${field} must be a duration in seconds such as "300s", got ${describe(value)}.`);
  }
  return Number(value.slice(0, -1));
}

export function formatDuration(seconds: number): string {
  return `${seconds}s`;
}

/** An RFC 3339 timestamp. */
export function parseTimestamp(value: unknown, field: string): Date {
  const date = typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    throw invalid(
      `${field} must be an RFC 3339 timestamp such as "2026-12-01T12:00:00Z", got ${describe(value)}.`,
    );
  }
  return date;
}

export function optionalNumber(
  body: Record<string, unknown>,
  field: string,
  path: string,
): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`${path} must be a number, got ${describe(value)}.`);
  }
  return value;
}

export function optionalBool(
  body: Record<string, unknown>,
  field: string,
  path: string,
): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(`${path} must be true or false, got ${describe(value)}.`);
  return value;
}

export function optionalText(body: Record<string, unknown>, field: string, path: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${path} must be a string, got ${describe(value)}.`);
  return value;
}

export function objectField(
  body: Record<string, unknown>,
  field: string,
  path: string,
): Record<string, unknown> {
  const value = body[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalid(`${path} must be an object, got ${describe(value)}.`);
  return value as Record<string, unknown>;
}

const MIN_CU = 0.5;
const MAX_CU = 64;
const MAX_CU_SPREAD = 16;
const MAX_SUSPEND_SECONDS = 604_800;

/** Checks CU limits: 0.5–64 in steps of 0.5, min ≤ max, max − min ≤ 16. */
export function checkComputeUnits(min: number, max: number, path: string): void {
  for (const [name, value] of [
    ['autoscaling_limit_min_cu', min],
    ['autoscaling_limit_max_cu', max],
  ] as const) {
    if (value < MIN_CU || value > MAX_CU || (value * 2) % 1 !== 0) {
      throw invalid(`${path}.${name} must be between ${MIN_CU} and ${MAX_CU} in steps of 0.5, got ${value}.`);
    }
  }
  if (min > max) {
    throw invalid(
      `${path}.autoscaling_limit_min_cu (${min}) must not exceed autoscaling_limit_max_cu (${max}).`,
    );
  }
  if (max - min > MAX_CU_SPREAD) {
    throw invalid(
      `${path}: autoscaling_limit_max_cu - autoscaling_limit_min_cu must be at most ${MAX_CU_SPREAD} CU, got ${max - min}.`,
    );
  }
}

/** Reads `suspend_timeout_duration` XOR `no_suspension`; undefined when neither is set. */
export function readSuspension(
  body: Record<string, unknown>,
  path: string,
  minSeconds: number,
): { seconds?: number } | undefined {
  const noSuspension = optionalBool(body, 'no_suspension', `${path}.no_suspension`);
  const timeout = body.suspend_timeout_duration;
  if (noSuspension !== undefined && timeout !== undefined && timeout !== null) {
    throw invalid(`${path}: set either suspend_timeout_duration or no_suspension, not both.`);
  }
  if (noSuspension === false)
    throw invalid(`${path}.no_suspension may only be true; to suspend, set suspend_timeout_duration.`);
  if (noSuspension) return {};
  if (timeout === undefined || timeout === null) return undefined;
  const seconds = parseDuration(timeout, `${path}.suspend_timeout_duration`);
  if (seconds < minSeconds || seconds > MAX_SUSPEND_SECONDS) {
    throw invalid(
      `${path}.suspend_timeout_duration must be between ${minSeconds}s and ${MAX_SUSPEND_SECONDS}s (7 days), got ${formatDuration(seconds)}; or set no_suspension.`,
    );
  }
  return { seconds };
}

/**
 * The leaf paths an `update_mask` names, checked: each must be one of
 * `allowed` (or a group in `groups`, standing for its members) and set in
 * the body; `*` and `spec` mean every allowed path the body sets. Mask paths
 * are relative to the resource (`spec.display_name`).
 *
 * @example
 * maskPaths('spec.display_name', { spec: { display_name: 'x' } }, ['spec.display_name'])
 * // → ['spec.display_name']
 */
export function maskPaths(
  mask: string | undefined,
  body: Record<string, unknown>,
  allowed: readonly string[],
  groups: Record<string, readonly string[]> = {},
  immutable: readonly string[] = [],
): string[] {
  if (!mask || mask.trim() === '') {
    throw invalid(`update_mask is required: the comma-separated fields to change, e.g. "${allowed[0]}".`);
  }
  const requested = mask
    .split(',')
    .map((path) => path.trim())
    .filter(Boolean);
  const paths = new Set<string>();
  for (const path of requested) {
    if (path === '*' || path === 'spec') {
      for (const candidate of allowed) if (valueAt(body, candidate) !== undefined) paths.add(candidate);
      continue;
    }
    if (immutable.includes(path)) {
      throw invalid(`Field path '${path}' cannot be updated: it is fixed when the resource is created.`);
    }
    const members = groups[path];
    if (members) {
      const set = members.filter((member) => valueAt(body, member) !== undefined);
      if (set.length === 0) throw unsetInBody(path, members[0]);
      for (const member of set) paths.add(member);
      continue;
    }
    if (!allowed.includes(path)) {
      throw invalid(
        `Unknown field path in update_mask: '${path}'. Updatable: ${[...allowed, ...Object.keys(groups)].join(', ')}.`,
      );
    }
    if (valueAt(body, path) === undefined) throw unsetInBody(path, path);
    paths.add(path);
  }
  if (paths.size === 0) throw invalid(`update_mask '${mask}' names no field the request body sets.`);
  return [...paths];
}

function unsetInBody(path: string, example: string): PierError {
  const [head, ...rest] = example.split('.');
  return invalid(
    `update_mask names '${path}' but the request body does not set it. Send the new value in the body, e.g. {"${head}": {"${rest.join('.')}": …}}.`,
  );
}

/** The value at a dotted path, or undefined (null counts as unset). */
export function valueAt(body: Record<string, unknown>, path: string): unknown {
  let current: unknown = body;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current === null ? undefined : current;
}

/** `page_size`: absent or 0 is `max`, larger values are capped to it. */
export function pageSize(value: string | undefined, max: number): number {
  if (value === undefined || value === '' || value === '0') return max;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw invalid(`page_size must be a positive integer, got "${value}".`);
  return Math.min(n, max);
}

/**
 * One page of a list held in memory (a branch's endpoints, databases or
 * roles: few), ordered by `key`, continuing after `page_token`.
 */
export function pageOfRows<T>(
  rows: T[],
  key: (row: T) => string,
  query: Record<string, string | undefined>,
  max: number,
): { rows: T[]; nextPageToken?: string } {
  const size = pageSize(query.page_size, max);
  const after = decodePageToken(query.page_token);
  const rest = [...rows].sort((a, b) => (key(a) < key(b) ? -1 : 1)).filter((row) => key(row) > after);
  const page = rest.slice(0, size);
  return {
    rows: page,
    ...(rest.length > size ? { nextPageToken: encodePageToken(key(page[page.length - 1])) } : {}),
  };
}
