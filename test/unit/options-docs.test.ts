/**
 * The options tables in the docs are generated from the option fields (scripts/options-docs.ts): the
 * committed pages must match what the fields say, and the fields must read well.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { optionTables, pages } from '../../scripts/options-docs.js';
import { checkOptions, expectedOf } from '../../src/farm/option-schema.js';
import { parseFlagValue } from '../../src/farm/option-text.js';
import { workerFields } from '../../src/farm/options.js';

test('the options tables in docs/ match the option fields (npm run docs:options rewrites them)', () => {
  for (const { page, current, wanted } of pages()) {
    assert.equal(current, wanted, `${page}: out of date; run npm run docs:options`);
  }
  assert.ok(optionTables().length >= 7);
});

test('a bad option is one line naming it, what was expected and what was given; defaults fill in', () => {
  const how = { code: 'ZKFARM_INVALID_ARGUMENT' };
  assert.throws(() => checkOptions(workerFields, { capacity: 0 }, how), {
    code: 'ZKFARM_INVALID_ARGUMENT',
    message: 'capacity: expected a whole number from 1 to 1024, got 0',
  });
  assert.throws(() => checkOptions(workerFields, { prefetch: 'lots' }, how), {
    message: 'prefetch: expected a whole number from 0 to 65536, or "auto", got "lots"',
  });
  assert.throws(() => checkOptions(workerFields, { taskDirs: 'sometimes', capacity: -1 }, how), {
    message: /^capacity: .* \(and 1 more problem\)$/,
  });
  const resolved = checkOptions(workerFields, { capacity: 8, logger: console }, how);
  assert.equal(resolved.capacity, 8);
  assert.equal(resolved.prefetch, 'auto');
  assert.equal(resolved.taskDirs, 'on-demand');
  assert.equal(
    expectedOf(workerFields.defaultTimeoutMs),
    'a whole number of milliseconds from 0 to 2147483647',
  );
});

test('flag values are read as the field says: digits as numbers, words as words', () => {
  assert.deepEqual(parseFlagValue(workerFields.prefetch, 'auto'), { value: 'auto' });
  assert.deepEqual(parseFlagValue(workerFields.prefetch, ' 12 '), { value: 12 });
  assert.deepEqual(parseFlagValue(workerFields.capacity, '1.5'), {
    problem: 'expected a whole number from 1 to 1024, got "1.5"',
  });
});
