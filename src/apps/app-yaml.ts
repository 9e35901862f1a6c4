import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { describe } from '../control/validate.js';
import { PierError } from '../errors.js';
import { ConfigProblem, type DatabaseResource, type FieldPath, parseResources } from './resources.js';

/** One `env` entry: a literal value, or the value of a resource (`valueFrom: <resource name>`). */
export type EnvEntry = { name: string; value: string } | { name: string; valueFrom: string };

/** What app.yaml says: how to start the app, its environment, and its resources. */
export interface AppConfig {
  /** The command, not run in a shell; undefined: `npm run start` when package.json has a start script. */
  command?: string[];
  env: EnvEntry[];
  resources: DatabaseResource[];
}

/** The names Databricks Apps (and Pier) set for every app; app.yaml cannot set them. */
const INJECTED_NAMES = [
  'DATABRICKS_HOST',
  'DATABRICKS_CLIENT_ID',
  'DATABRICKS_CLIENT_SECRET',
  'DATABRICKS_APP_NAME',
  'DATABRICKS_APP_PORT',
  'DATABRICKS_APP_URL',
  'DATABRICKS_WORKSPACE_ID',
];
const TOP_LEVEL = ['command', 'env', 'resources'];
const EXAMPLE = `command: ['node', 'server.js']
env:
  - name: LOG_LEVEL
    value: info
resources:
  - name: db
    database: {instance_name: order-mgmt-db, database_name: databricks_postgres, permission: CAN_CONNECT_AND_CREATE}`;

/** app.yaml, else app.yml, of a directory, with its file name; undefined when there is neither. */
export async function readAppYaml(dir: string): Promise<{ file: string; text: string } | undefined> {
  for (const file of ['app.yaml', 'app.yml']) {
    try {
      return { file, text: await readFile(join(dir, file), 'utf8') };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return undefined;
}

/**
 * Parses app.yaml. Anything wrong is INVALID_PARAMETER_VALUE naming the
 * file and line and saying what to write instead.
 *
 * @example
 * parseAppYaml("command: ['node', 'server.js']\n", 'app.yaml') // {command: ['node', 'server.js'], env: [], resources: []}
 */
export function parseAppYaml(text: string, file = 'app.yaml'): AppConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const [syntax] = doc.errors;
  if (syntax) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `${at(syntax.pos[0])}: ${syntax.message.split('\n')[0]} (app.yaml is YAML; check the indentation and quotes on this line).`,
    );
  }
  try {
    return readConfig(doc.toJS() ?? {});
  } catch (error) {
    if (!(error instanceof ConfigProblem)) throw error;
    throw new PierError('INVALID_PARAMETER_VALUE', `${at(nodeOffset(doc, error.path))}: ${error.message}`);
  }
}

/** Where the field of `path` is written (a mapping's key, a list's item), else the nearest enclosing one. */
function nodeOffset(doc: ReturnType<typeof parseDocument>, path: FieldPath): number | undefined {
  for (let depth = path.length; depth > 0; depth--) {
    const parent = depth === 1 ? doc.contents : doc.getIn(path.slice(0, depth - 1), true);
    const key = path[depth - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === key);
      if (isNode(pair?.key) && pair.key.range) return pair.key.range[0];
    } else if (isSeq(parent)) {
      const item = parent.items[key as number];
      if (isNode(item) && item.range) return item.range[0];
    }
  }
  return isNode(doc.contents) ? doc.contents.range?.[0] : undefined;
}

function readConfig(raw: unknown): AppConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigProblem([], `app.yaml must be a mapping, e.g.\n${EXAMPLE}`);
  }
  const body = raw as Record<string, unknown>;
  const other = Object.keys(body).find((key) => !TOP_LEVEL.includes(key));
  if (other) {
    throw new ConfigProblem(
      [other],
      `Unknown key '${other}'; app.yaml has command, env and resources (a database resource goes under resources: - {name: db, database: {instance_name: …}}).`,
    );
  }
  const resources = parseResources(body.resources, ['resources']);
  return { command: readCommand(body.command), env: readEnv(body.env), resources };
}

function readCommand(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'string') {
    throw new ConfigProblem(
      ['command'],
      `command must be a list of arguments (it is not run in a shell): write command: ${JSON.stringify(raw.trim().split(/\s+/))}.`,
    );
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new ConfigProblem(
      ['command'],
      `command must be a non-empty list, e.g. command: ['node', 'server.js'].`,
    );
  }
  return raw.map((arg, i) => {
    if (typeof arg === 'string') return arg;
    if (typeof arg === 'number' || typeof arg === 'boolean') return String(arg);
    throw new ConfigProblem(
      ['command', i],
      `Each argument of command must be a string, got ${describe(arg)}.`,
    );
  });
}

function readEnv(raw: unknown): EnvEntry[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    throw new ConfigProblem(
      ['env'],
      `env must be a list of entries such as - {name: LOG_LEVEL, value: info}.`,
    );
  }
  const names = new Set<string>();
  return raw.map((entry, i): EnvEntry => {
    const path = ['env', i];
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new ConfigProblem(path, `Each env entry is a mapping: - {name: LOG_LEVEL, value: info}.`);
    }
    const item = entry as Record<string, unknown>;
    const name = item.name;
    if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new ConfigProblem(
        name === undefined ? path : [...path, 'name'],
        `env entry needs a name of letters, digits and '_' (not starting with a digit), got ${describe(name)}.`,
      );
    }
    if (INJECTED_NAMES.includes(name)) {
      throw new ConfigProblem([...path, 'name'], `${name} is set by Pier for every app; remove this entry.`);
    }
    if (names.has(name)) throw new ConfigProblem([...path, 'name'], `${name} is set twice; keep one entry.`);
    names.add(name);
    const other = Object.keys(item).find((key) => !['name', 'value', 'valueFrom'].includes(key));
    if (other) {
      throw new ConfigProblem(
        [...path, other],
        `Unknown field '${other}' in env entry ${name}; use value or valueFrom.`,
      );
    }
    if ('value' in item && 'valueFrom' in item) {
      throw new ConfigProblem(
        [...path, 'valueFrom'],
        `env entry ${name} has both value and valueFrom; keep one.`,
      );
    }
    if ('valueFrom' in item) {
      // Which resources the app has is known at deploy time (they may come from the API or --resource).
      const from = item.valueFrom;
      if (typeof from !== 'string' || from.trim() === '') {
        throw new ConfigProblem(
          [...path, 'valueFrom'],
          `valueFrom of ${name} must name a resource of the app, e.g. valueFrom: db.`,
        );
      }
      return { name, valueFrom: from };
    }
    const value = item.value;
    if (typeof value === 'string') return { name, value };
    if (typeof value === 'number' || typeof value === 'boolean') return { name, value: String(value) };
    throw new ConfigProblem(
      'value' in item ? [...path, 'value'] : path,
      `env entry ${name} needs value: <text> or valueFrom: <resource name>.`,
    );
  });
}
