// --secrets-file: NAME=VALUE lines become the CAGED_SECRET_<NAME> values the proxy injects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCli, parseSecretsFile } from '../../src/proxy/config';

test('a secrets file maps NAME=VALUE lines to CAGED_SECRET_<NAME>', () => {
  const r = parseSecretsFile('# tokens for the cage\n\ngithub=ghp_x=y\nmy-api = v2\r\nUPSTREAM_TOKEN=abc\n');
  assert.deepEqual(r, { env: { CAGED_SECRET_GITHUB: 'ghp_x=y', 'CAGED_SECRET_MY_API': ' v2', CAGED_SECRET_UPSTREAM_TOKEN: 'abc' } });
});

test('a malformed line is reported by number, never echoed', () => {
  const r = parseSecretsFile('ok=1\nthis-line-holds-a-secret-without-name\n');
  assert.ok('error' in r);
  assert.equal(r.error, 'line 2 is not NAME=VALUE');
});

test('--secrets-file and CAGED_SECRETS_FILE', () => {
  const a = parseCli(['--policy', 'p', '--ca-cert', 'c', '--ca-key', 'k', '--secrets-file', '/run/s.env'], {});
  assert.ok('config' in a && a.config.secretsFile === '/run/s.env');
  const b = parseCli(['--policy', 'p', '--ca-cert', 'c', '--ca-key', 'k'], { CAGED_SECRETS_FILE: '/e/s.env' });
  assert.ok('config' in b && b.config.secretsFile === '/e/s.env');
});
