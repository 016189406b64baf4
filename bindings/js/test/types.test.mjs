// Node only: keeps the hand-written index.d.ts in step with the runtime package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as lib from '@gochat/e2ee';

const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');

test('types: the ErrorCode union equals errorCodes(), in order', () => {
  const union = dts.match(/export type ErrorCode =([^;]*);/)[1];
  const declared = [...union.matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]);
  assert.deepEqual(declared, lib.errorCodes());
});

test('types: every runtime export is declared in index.d.ts', () => {
  for (const name of Object.keys(lib)) {
    assert.match(dts, new RegExp(`export (declare )?(const|function|class|let) ${name}\\b`), `${name} not declared`);
  }
});
