import { optionalInteger } from '../control/validate.js';
import { invalidParameter } from '../errors.js';

/** Unity Catalog list paging: `max_results` (absent = everything, 0 = server default) and `page_token`. */
export interface PageRequest {
  /** List names strictly after this one ('' = from the start). */
  afterName: string;
  /** At most this many items; undefined = all. */
  limit: number | undefined;
}

export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
const CHUNK = 500;

export function parsePageRequest(query: Record<string, string | undefined>): PageRequest {
  const max = optionalInteger(query, 'max_results');
  if (max !== undefined && max < 0) throw invalidParameter(`max_results must be 0 or more, got ${max}.`);
  const limit = max === undefined ? undefined : max === 0 ? DEFAULT_PAGE_SIZE : Math.min(max, MAX_PAGE_SIZE);
  return { afterName: decodePageToken(query.page_token), limit };
}

/** The name a page token continues after ('' without a token). */
export function decodePageToken(token: string | undefined): string {
  if (!token) return '';
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  if (!decoded.startsWith('n:')) {
    throw invalidParameter('page_token is invalid; pass the next_page_token of the previous page.');
  }
  return decoded.slice(2);
}

function tokenAfter(name: string): string {
  return Buffer.from(`n:${name}`).toString('base64url');
}

/**
 * Reads name-ordered rows in chunks, keeps the visible ones, and stops at a
 * page. The token is the last name returned, so pages stay stable under inserts.
 */
export async function collectPage<T extends { name: string }>(
  request: PageRequest,
  fetch: (afterName: string, limit: number) => Promise<T[]>,
  keep: (row: T) => boolean | Promise<boolean> = () => true,
): Promise<Page<T>> {
  const items: T[] = [];
  let after = request.afterName;
  for (;;) {
    const rows = await fetch(after, CHUNK);
    for (const row of rows) {
      after = row.name;
      if (!(await keep(row))) continue;
      if (request.limit !== undefined && items.length === request.limit) {
        return { items, nextPageToken: tokenAfter(items[items.length - 1].name) };
      }
      items.push(row);
    }
    if (rows.length < CHUNK) return { items };
  }
}

/** Pages an in-memory name-sorted list (live reads from a database catalog). */
export function pageOf<T extends { name: string }>(request: PageRequest, all: T[]): Page<T> {
  const rest = all.filter((row) => row.name > request.afterName);
  if (request.limit === undefined || rest.length <= request.limit) return { items: rest };
  const items = rest.slice(0, request.limit);
  return { items, nextPageToken: tokenAfter(items[items.length - 1].name) };
}
