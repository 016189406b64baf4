// Runs the shared suite in Node: `node --test test/`.
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as lib from '../node.js';
import { defineTests } from './suite.mjs';

const vectors = new URL('../../../test-vectors/', import.meta.url);
defineTests(test, lib, async (name) => JSON.parse(readFileSync(new URL(`${name}.json`, vectors), 'utf8')));
