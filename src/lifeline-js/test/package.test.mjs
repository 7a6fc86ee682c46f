// The package's metadata points at files that exist, and says under which licence it ships.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

test('package.json: the licence is MIT, as the repository', () => {
  assert.equal(pkg.license, 'MIT');
});

test('package.json: main, types, exports and files name files that exist', () => {
  const named = [pkg.main, pkg.module, pkg.types, pkg.exports['.'].types, pkg.exports['.'].default, ...pkg.files];
  for (const file of named) {
    assert.ok(existsSync(join(root, file)), `${file} does not exist`);
  }
});
