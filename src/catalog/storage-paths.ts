import { isAbsolute, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { invalidParameter } from '../errors.js';

export { isWithin, resolveOnDisk } from '../delta/local-paths.js';

/**
 * Storage locations as local directories: parsing what a user wrote (an
 * absolute path or a file:// URL). Resolving on disk is `delta/local-paths.ts`,
 * shared with the Delta reader's own confinement.
 */

/**
 * The absolute local path a storage location names, normalised lexically
 * (`..` folded, no trailing slash). Touches nothing on disk.
 *
 * @example
 * localPath('file:///data/lake/t/', 'storage_location'); // '/data/lake/t'
 */
export function localPath(value: string, field: string): string {
  let path = value;
  if (value.startsWith('file:')) {
    try {
      path = fileURLToPath(value);
    } catch {
      throw invalidParameter(`${field} '${value}' is not a valid file:// URL; use file:///absolute/path.`);
    }
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw invalidParameter(
      `${field} '${value}' uses a scheme Pier cannot read yet; use a local path or a file:// URI.`,
    );
  } else if (!isAbsolute(value)) {
    throw invalidParameter(`${field} '${value}' must be an absolute path or a file:// URI.`);
  }
  const normalized = normalize(path);
  return normalized.length > 1 && normalized.endsWith(sep) ? normalized.slice(0, -1) : normalized;
}

/** The file:// URL of a local path. */
export function fileUrl(path: string): string {
  return pathToFileURL(path).href;
}
