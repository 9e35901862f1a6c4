import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAppYaml } from '../../src/apps/app-yaml.js';
import { expandCommand } from '../../src/apps/environment.js';
import { readAppLog, rotateIfLarge } from '../../src/apps/logs.js';
import { parseResourceFlag } from '../../src/apps/resources.js';

test("app.yaml: the seed's short database resource and the Databricks Apps schema read the same", () => {
  const short = parseAppYaml(
    'command: ["streamlit", "run", "app.py"]\nresources:\n  - name: lakebase\n    database:\n      instance: order-mgmt-db\nenv:\n  - name: LAKEBASE_INSTANCE_NAME\n    value: order-mgmt-db\n  - name: DB_HOST\n    valueFrom: lakebase\n  - name: DEBUG\n    value: true\n',
  );
  const full = parseAppYaml(
    'command: ["streamlit", "run", "app.py"]\nresources:\n  - name: lakebase\n    database: {instance_name: order-mgmt-db, database_name: databricks_postgres, permission: CAN_CONNECT_AND_CREATE}\n',
  );
  assert.deepEqual(short.resources, full.resources);
  assert.deepEqual(short.resources, [
    {
      name: 'lakebase',
      database: {
        instance_name: 'order-mgmt-db',
        database_name: 'databricks_postgres',
        permission: 'CAN_CONNECT_AND_CREATE',
      },
    },
  ]);
  assert.deepEqual(short.env, [
    { name: 'LAKEBASE_INSTANCE_NAME', value: 'order-mgmt-db' },
    { name: 'DB_HOST', valueFrom: 'lakebase' },
    { name: 'DEBUG', value: 'true' },
  ]);
  assert.deepEqual(parseResourceFlag('db=order-mgmt-db/orders'), {
    name: 'db',
    database: {
      instance_name: 'order-mgmt-db',
      database_name: 'orders',
      permission: 'CAN_CONNECT_AND_CREATE',
    },
  });
});

test('app.yaml: each mistake is reported at its line, with what to write', () => {
  const cases: [string, RegExp][] = [
    ["command: ['node'\nenv: [}\n", /^app\.yaml:2:1: .*check the indentation and quotes/],
    ['comand: [node]\n', /^app\.yaml:1:1: Unknown key 'comand'; app\.yaml has command, env and resources/],
    ['command: []\n', /^app\.yaml:1:1: command must be a non-empty list/],
    [
      "command: ['node']\nenv:\n  - name: 1X\n    value: a\n",
      /^app\.yaml:3:5: env entry needs a name of letters/,
    ],
    [
      "command: ['node']\nenv:\n  - name: A\n    value: a\n    valueFrom: db\n",
      /^app\.yaml:5:5: env entry A has both value and valueFrom/,
    ],
    [
      "command: ['node']\nenv:\n  - name: DATABRICKS_HOST\n    value: x\n",
      /^app\.yaml:3:5: DATABRICKS_HOST is set by Pier/,
    ],
    [
      "command: ['node']\nresources:\n  - name: db\n    database:\n      instance_name: x\n      permission: CAN_READ\n",
      /^app\.yaml:6:7: permission "CAN_READ" .* write permission: CAN_CONNECT_AND_CREATE/,
    ],
    [
      "command: ['node']\nresources:\n  - name: db\n    database: {}\n",
      /^app\.yaml:4:5: Database resource 'db' names no instance; add instance_name/,
    ],
    [
      "command: ['node']\nresources:\n  - name: w\n    sql_warehouse: {id: 1}\n",
      /^app\.yaml:4:5: Pier binds database resources only/,
    ],
    [
      "command: ['node']\nresources:\n  - {name: db, database: {instance: a}}\n  - {name: db, database: {instance: b}}\n",
      /^app\.yaml:4:6: Two resources are named 'db'/,
    ],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => parseAppYaml(text),
      (error: Error & { kind?: string }) => {
        assert.equal(error.kind, 'INVALID_PARAMETER_VALUE');
        assert.match(error.message, expected);
        return true;
      },
    );
  }
});

test('the command gets $DATABRICKS_APP_PORT expanded, and nothing else', () => {
  assert.deepEqual(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text an app.yaml holds
    expandCommand(['uvicorn', '--port', '$DATABRICKS_APP_PORT', '${DATABRICKS_APP_PORT}', '$HOME'], 8123),
    ['uvicorn', '--port', '8123', '8123', '$HOME'],
  );
});

test('app logs are bounded: rotated past the limit, and a follower reads across the rotation', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pier-app-log-'));
  try {
    const file = join(dir, 'app.log');
    await writeFile(file, 'first line\n');
    const start = await readAppLog(file, {});
    assert.equal(start.text, 'first line\n');
    await appendFile(file, 'x'.repeat(2000));
    await appendFile(file, '\nlast before rotation\n');
    assert.equal(await rotateIfLarge(file, 1000), true);
    assert.equal((await stat(file)).size, 0);
    assert.match(await readFile(`${file}.1`, 'utf8'), /last before rotation/);
    await appendFile(file, 'after rotation\n');
    const followed = await readAppLog(file, { offset: start.nextOffset });
    assert.match(followed.text, /^x{2000}\nlast before rotation\nafter rotation\n$/);
    assert.equal((await readAppLog(file, { offset: followed.nextOffset })).text, '');
    for (let i = 0; i < 4; i++) {
      await appendFile(file, 'y'.repeat(1500));
      await rotateIfLarge(file, 1000);
    }
    await assert.rejects(stat(`${file}.4`)); // at most three old files
    await stat(`${file}.3`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
