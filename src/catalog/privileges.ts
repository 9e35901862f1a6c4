import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import { type GrantRow, listGrants } from './grants-store.js';

/**
 * Unity Catalog's privilege model, for the privileges Pier enforces.
 *
 * - A workspace admin is the metastore admin: every check passes.
 * - The owner of an object holds every privilege on it and on everything
 *   below it (a catalog owner may do anything in the catalog).
 * - A privilege granted on a catalog or schema is inherited by every object
 *   below it; ALL_PRIVILEGES stands for each privilege.
 * - To reach anything inside a catalog you need USE_CATALOG on it; inside a
 *   schema, USE_SCHEMA too: the privileges do not imply each other.
 */
export const PRIVILEGES = [
  'ALL_PRIVILEGES',
  'CREATE_EXTERNAL_TABLE',
  'CREATE_SCHEMA',
  'CREATE_TABLE',
  'MODIFY',
  'READ_FILES',
  'SELECT',
  'USE_CATALOG',
  'USE_SCHEMA',
] as const;
export type Privilege = (typeof PRIVILEGES)[number];

/** An external location stands alone: its path has one level. */
export type SecurableType = 'CATALOG' | 'SCHEMA' | 'TABLE' | 'EXTERNAL_LOCATION';

/** Which privileges mean something on (or below) each securable type. */
export const APPLICABLE: Record<SecurableType, readonly Privilege[]> = {
  CATALOG: [
    'ALL_PRIVILEGES',
    'CREATE_SCHEMA',
    'CREATE_TABLE',
    'MODIFY',
    'SELECT',
    'USE_CATALOG',
    'USE_SCHEMA',
  ],
  SCHEMA: ['ALL_PRIVILEGES', 'CREATE_TABLE', 'MODIFY', 'SELECT', 'USE_SCHEMA'],
  TABLE: ['ALL_PRIVILEGES', 'MODIFY', 'SELECT'],
  EXTERNAL_LOCATION: ['ALL_PRIVILEGES', 'CREATE_EXTERNAL_TABLE', 'READ_FILES'],
};

/** Principals that stand for everyone: grants to them apply to every user. */
export const EVERYONE = ['account users', 'users'];

/** One object on the way from a catalog down to the object acted on. */
export interface Securable {
  type: SecurableType;
  id: string;
  fullName: string;
  owner: string;
}

/** Privilege names as UC's messages spell them ("USE CATALOG"). */
function spoken(privilege: Privilege): string {
  return privilege.replaceAll('_', ' ');
}

function samePrincipal(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Whether a grant to `principal` reaches `caller`. */
function grantReaches(principal: string, caller: IdentityRow): boolean {
  if (samePrincipal(principal, caller.user_name)) return true;
  if (EVERYONE.includes(principal.toLowerCase())) return true;
  return caller.is_admin && principal.toLowerCase() === 'admins';
}

/**
 * What one caller may do along one path (catalog first). Built once per
 * request from the grants on the path.
 */
export class Access {
  private constructor(
    readonly caller: IdentityRow,
    readonly path: Securable[],
    private readonly grants: GrantRow[],
  ) {}

  /** Loads the caller's grants on every object of `path`. */
  static async load(db: Queryable, caller: IdentityRow, path: Securable[]): Promise<Access> {
    return (await Access.loadMany(db, caller, [path]))[0];
  }

  /** One Access per path, with the grants of all of them read in one query (a page of a list). */
  static async loadMany(db: Queryable, caller: IdentityRow, paths: Securable[][]): Promise<Access[]> {
    if (caller.is_admin || paths.length === 0) return paths.map((path) => new Access(caller, path, []));
    // Objects read live from a database catalog have no id and no grants of their own.
    const ids = new Set(paths.flat().map((s) => s.id));
    ids.delete('');
    const grants = (await listGrants(db, [...ids])).filter((g) => grantReaches(g.principal, caller));
    return paths.map((path) => {
      const onPath = new Set(path.map((s) => s.id));
      return new Access(
        caller,
        path,
        grants.filter((g) => onPath.has(g.securable_id)),
      );
    });
  }

  /**
   * The rows whose path passes `test`: one page of a list, its grants read in one query.
   *
   * @example
   * const visible = await Access.filter(db, caller, rows, (row) => [catalogSecurable(row)], (a) => a.has('USE_CATALOG', 0));
   */
  static async filter<T>(
    db: Queryable,
    caller: IdentityRow,
    rows: T[],
    pathOf: (row: T) => Securable[],
    test: (access: Access) => boolean,
  ): Promise<T[]> {
    const access = await Access.loadMany(db, caller, rows.map(pathOf));
    return rows.filter((_, i) => test(access[i]));
  }

  /** Holds any privilege at all on the object at `level` (UC: enough to see an external location). */
  holdsAny(level: number): boolean {
    if (this.ownsUpTo(level)) return true;
    return this.grants.some((g) => g.securable_id === this.path[level].id);
  }

  /** Owner of the object at `level`, or of one above it. */
  ownsUpTo(level: number): boolean {
    if (this.caller.is_admin) return true;
    return this.path.slice(0, level + 1).some((s) => samePrincipal(s.owner, this.caller.user_name));
  }

  /** Holds `privilege` on the object at `level`: admin, owner above or at it, or granted at or above it. */
  has(privilege: Privilege, level: number): boolean {
    if (this.ownsUpTo(level)) return true;
    const ids = new Set(this.path.slice(0, level + 1).map((s) => s.id));
    return this.grants.some(
      (g) => ids.has(g.securable_id) && (g.privilege === privilege || g.privilege === 'ALL_PRIVILEGES'),
    );
  }

  /** Throws PERMISSION_DENIED unless the caller holds `privilege` on the object at `level`. */
  require(privilege: Privilege, level: number): void {
    if (this.has(privilege, level)) return;
    const target = this.path[level];
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${this.caller.user_name} does not have ${spoken(privilege)} on ${label(target.type)} '${target.fullName}'. Ask its owner or an admin to grant it.`,
    );
  }

  /** Throws PERMISSION_DENIED unless the caller owns the object at `level` or one above it. */
  requireOwnership(level: number, what: string): void {
    if (this.ownsUpTo(level)) return;
    const target = this.path[level];
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${this.caller.user_name} cannot ${what} ${label(target.type)} '${target.fullName}': only its owner, the owner of its parent, or an admin can.`,
    );
  }

  /** The path down to a catalog object is usable: USE_CATALOG, plus USE_SCHEMA when there is a schema. */
  requireUsage(): void {
    this.require('USE_CATALOG', 0);
    if (this.path.length > 1) this.require('USE_SCHEMA', 1);
  }

  /** May see the object at the end of the path (UC's rule for get/list). */
  canSee(): boolean {
    const last = this.path.length - 1;
    if (!this.has('USE_CATALOG', 0)) return false;
    if (this.path.length === 1) return true;
    if (!this.has('USE_SCHEMA', 1) && !this.ownsUpTo(1)) return false;
    if (this.path.length === 2) return true;
    return this.has('SELECT', last) || this.has('MODIFY', last);
  }

  /** Like canSee, with an error naming the missing privilege. */
  requireVisible(): void {
    this.require('USE_CATALOG', 0);
    if (this.path.length === 1) return;
    if (!this.ownsUpTo(1)) this.require('USE_SCHEMA', 1);
    if (this.path.length === 3 && !this.has('MODIFY', 2)) this.require('SELECT', 2);
  }
}

const LABELS: Record<SecurableType, string> = {
  CATALOG: 'Catalog',
  SCHEMA: 'Schema',
  TABLE: 'Table',
  EXTERNAL_LOCATION: 'External Location',
};

export function label(type: SecurableType): string {
  return LABELS[type];
}
