/**
 * Options made only of plain values (whole numbers in range, connect strings, credentials) are checked
 * without zod: its ~45 ms load was a large part of a short-lived command's start (`runtime submit`).
 * The plain predicates must be the schemas' own rule, never wider; a value they refuse goes through zod
 * and gets zod's message. Both of zod's builds set `globalThis.__zod_globalConfig` when they load.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { checkOptions, like, wholeNumber } from '../../src/farm/option-schema.js';
import { checkSubmitterOptions, connectString, credentials, roleFields } from '../../src/farm/options.js';
import type { Zod } from '../../src/lazy-zod.js';

const zodLoaded = () => '__zod_globalConfig' in globalThis;

test('plain options are checked without loading zod; a bad one still gets its message', () => {
  assert.equal(zodLoaded(), false, 'nothing imported here loads zod by itself');
  const resolved = checkSubmitterOptions({
    connect: '10.0.0.1:2181,10.0.0.2:2181/farm-a',
    auth: 'alice:secret',
    connectTimeout: 5000,
    sessionTimeout: 8000,
  });
  assert.equal(resolved.connect, '10.0.0.1:2181,10.0.0.2:2181/farm-a');
  assert.equal(resolved.connectTimeout, 5000);
  assert.equal(resolved.maxQueue, 20_000, 'defaults are filled in');
  assert.equal(resolved.batchSize, 100);
  assert.equal(zodLoaded(), false, 'checking plain values loaded zod');

  const flag = like(roleFields.connect, { flag: '--zk <connect>', description: 'elsewhere' });
  assert.equal(flag.description, 'elsewhere');
  assert.equal(flag.default, '127.0.0.1:2181', 'like keeps what it does not replace');
  assert.equal(zodLoaded(), false, 'making a field like another built its schema');

  assert.throws(() => checkSubmitterOptions({ connect: '127.0.0.1:2181', connectTimeout: 0 }), {
    code: 'ZKFARM_INVALID_ARGUMENT',
    message: /^connectTimeout: expected a whole number of milliseconds >= 1, got 0$/,
  });
  assert.throws(() => checkSubmitterOptions({ connect: 'localhost' }), {
    code: 'ZKFARM_INVALID_ARGUMENT',
    message: /^connect: expected a connect string/,
  });
  assert.equal(zodLoaded(), true, 'a bad value is reported through the schema');
  assert.ok(flag.schema.safeParse('127.0.0.1:2181').success, "like's schema is its base's");
});

test('a required field left out goes through the schema, and says so', () => {
  const fields = { n: like(roleFields.connectTimeout, { required: true }) };
  assert.throws(() => checkOptions(fields, {}, { code: 'ZKFARM_INVALID_ARGUMENT' }), {
    code: 'ZKFARM_INVALID_ARGUMENT',
    message: /^n: /,
  });
});

test('each plain rule accepts exactly what its schema accepts, unchanged', () => {
  // Loaded here on purpose: the schemas are the reference.
  const z = (createRequire(import.meta.url)('zod') as { z: Zod }).z;
  const values: unknown[] = [
    0,
    -0,
    1,
    2,
    9,
    10,
    11,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    2 ** 53,
    2 ** 53 - 1,
    '5',
    null,
    undefined,
    true,
    {},
    [],
    '',
    '127.0.0.1:2181',
    'localhost',
    'h1:2181,h2:2181/farm-a',
    'h:1/',
    'h:99999',
    ' 127.0.0.1:2181',
    'a:b',
    'a:',
    ':b',
    'a b:c',
    'alice:pw with spaces',
    'no-colon',
  ];
  const rules = {
    'wholeNumber(1, 10)': wholeNumber(1, 10),
    'wholeNumber(0)': wholeNumber(0),
    connectString,
    credentials,
  };
  for (const [name, build] of Object.entries(rules)) {
    assert.ok(build.accepts, `${name} has a plain rule`);
    const schema = build(z);
    for (const v of values) {
      const parsed = schema.safeParse(v);
      assert.equal(build.accepts!(v), parsed.success, `${name} on ${JSON.stringify(v) ?? String(v)}`);
      if (parsed.success) assert.ok(Object.is(parsed.data, v), `${name} keeps ${String(v)} as it is`);
    }
  }
});
