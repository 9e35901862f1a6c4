import { optionalInteger } from './control/validate.js';
import { invalidParameter } from './errors.js';

/**
 * Paging for every list of the API. Every list is ordered by name and
 * continues after the last name of the previous page; the one page-token
 * codec below (`encodePageToken` / `decodePageToken`) carries that name,
 * opaque to clients. Unity Catalog lists take `max_results` (0 = the
 * server's page size, larger values capped, negative an error); without it
 * a list still comes in pages of at most MAX_PAGE_SIZE, with a
 * `next_page_token` when more remain: one request never reads a whole store.
 * Database lists take `page_size` (see their services).
 */
export interface PageRequest {
  /** List names strictly after this one ('' = from the start). */
  afterName: string;
  /** At most this many items. */
  limit: number;
}

export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
/** Rows read per store query while filtering by privilege. */
const MAX_CHUNK = 500;
const MIN_CHUNK = 50;

export function parsePageRequest(query: Record<string, string | undefined>): PageRequest {
  const max = optionalInteger(query, 'max_results');
  if (max !== undefined && max < 0) throw invalidParameter(`max_results must be 0 or more, got ${max}.`);
  const limit =
    max === undefined ? MAX_PAGE_SIZE : max === 0 ? DEFAULT_PAGE_SIZE : Math.min(max, MAX_PAGE_SIZE);
  return { afterName: decodePageToken(query.page_token), limit };
}

/** The name a page token continues after ('' without a token); INVALID_PARAMETER_VALUE if it is not one of ours. */
export function decodePageToken(token: string | undefined): string {
  if (!token) return '';
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  if (!decoded.startsWith('n:')) {
    throw invalidParameter('page_token is invalid; pass the next_page_token of the previous page.');
  }
  return decoded.slice(2);
}

/** The page token of the page after the one that ended with `name`. */
export function encodePageToken(name: string): string {
  return Buffer.from(`n:${name}`).toString('base64url');
}

/**
 * Reads name-ordered rows in chunks, keeps the ones `visible` returns (it
 * sees a whole chunk at once, so privileges cost one query per chunk, not
 * one per row), and stops at a full page. The token is the last name
 * returned, so pages stay stable under inserts.
 */
export async function collectPage<T extends { name: string }>(
  request: PageRequest,
  fetch: (afterName: string, limit: number) => Promise<T[]>,
  visible: (rows: T[]) => Promise<T[]> = async (rows) => rows,
): Promise<Page<T>> {
  const chunk = Math.min(MAX_CHUNK, Math.max(request.limit + 1, MIN_CHUNK));
  const items: T[] = [];
  let after = request.afterName;
  for (;;) {
    const rows = await fetch(after, chunk);
    const kept = new Set(rows.length > 0 ? await visible(rows) : []);
    for (const row of rows) {
      if (!kept.has(row)) continue;
      if (items.length === request.limit) {
        return { items, nextPageToken: encodePageToken(items[items.length - 1].name) };
      }
      items.push(row);
    }
    if (rows.length < chunk) return { items };
    after = rows[rows.length - 1].name;
  }
}

/** Pages an in-memory name-sorted list (live reads from a database catalog). */
export function pageOf<T extends { name: string }>(request: PageRequest, all: T[]): Page<T> {
  const rest = all.filter((row) => row.name > request.afterName);
  if (rest.length <= request.limit) return { items: rest };
  const items = rest.slice(0, request.limit);
  return { items, nextPageToken: encodePageToken(items[items.length - 1].name) };
}

/**
 * The page size of a list that takes `page_size` (database instances, apps):
 * absent or 0 is the default page, larger values are capped, negative is an error.
 */
export function pageSizeOf(
  query: Record<string, string | undefined>,
  defaultSize = 100,
  maxSize = 1000,
): number {
  const size = optionalInteger(query, 'page_size') ?? defaultSize;
  if (size < 0) throw invalidParameter(`page_size must be positive, got ${size}.`);
  return Math.min(size === 0 ? defaultSize : size, maxSize);
}
