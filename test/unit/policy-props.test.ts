// Property-style checks with a seeded generator: thousands of random inputs, fixed seed so failures repeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addAllow,
  canonicalHost,
  classifyAddress,
  compileGlob,
  decide,
  moveEntry,
  normalizePath,
  parsePolicy,
  removeEntry,
  setDisabled,
  starterPolicy,
  updateEntry,
  type Policy,
} from '../../src/policy';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const R = rng(Number(process.env.POLICY_SEED ?? 20240601));
const int = (n: number) => Math.floor(R() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

function label(): string {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789-';
  const n = 1 + int(10);
  let s = pick('abcdefghijklmnopqrstuvwxyz'.split(''));
  for (let i = 1; i < n; i++) s += pick(chars.split(''));
  return s.replace(/-+$/, '') || 'x';
}

function domain(): string {
  const n = 2 + int(3);
  return Array.from({ length: n }, label).join('.');
}

function policyOf(text: string): Policy {
  const r = parsePolicy(text);
  assert.deepEqual(r.errors, [], text);
  return r.policy!;
}

function randomCase(s: string): string {
  return [...s].map((c) => (R() < 0.5 ? c.toUpperCase() : c)).join('');
}

test('property: a wildcard matches every subdomain depth, never its apex or look-alikes', () => {
  for (let i = 0; i < 400; i++) {
    const parent = domain();
    const p = policyOf(`version: 1\nallow:\n  - host: "*.${parent}"\n`);
    const ok = (host: string) => decide({ host, port: 443 }, p).action === 'allow';
    assert.equal(ok(parent), false, `apex ${parent}`);
    assert.equal(ok(parent + '.'), false, `apex with dot ${parent}`);
    assert.equal(ok(randomCase(parent)), false);
    const sub = Array.from({ length: 1 + int(3) }, label).join('.') + '.' + parent;
    assert.equal(ok(sub), true, sub);
    assert.equal(ok(randomCase(sub) + (R() < 0.5 ? '.' : '')), true, sub);
    assert.equal(ok(label() + parent), false, 'prefix glued to the parent');
    assert.equal(ok(`${sub}.${label()}`), false, 'parent followed by more labels');
    assert.equal(decide({ host: sub, port: 8443 }, p).action, 'deny', 'other ports need an explicit rule');
  }
});

test('property: an exact rule matches only that host, in any case, with or without the trailing dot', () => {
  for (let i = 0; i < 400; i++) {
    const host = domain();
    const p = policyOf(`version: 1\nallow:\n  - host: ${host}\n`);
    assert.equal(decide({ host: randomCase(host) + (R() < 0.5 ? '.' : ''), port: pick([80, 443]) }, p).action, 'allow');
    assert.equal(decide({ host: label() + '.' + host, port: 443 }, p).action, 'deny');
    assert.equal(decide({ host: 'x' + host, port: 443 }, p).action, 'deny');
    assert.equal(decide({ host: host.split('.').slice(1).join('.'), port: 443 }, p).action, 'deny');
  }
});

function randomPath(): string {
  const parts = ['a', 'b', 'my-org', '.', '..', '%2e', '%2E%2e', '.%2e', '%2f', '%2F', '%41', '%7e', '~', '', 'x y', 'é', '*', ';p=1', '%25', '%3F', 'a.b', '..a', '...'];
  let s = '';
  const n = int(8);
  for (let i = 0; i < n; i++) s += '/' + pick(parts);
  if (R() < 0.2) s += '/';
  if (R() < 0.1) s += '?q=' + pick(parts);
  if (R() < 0.05) s += '#' + pick(parts);
  return s === '' ? '/' : s;
}

test('property: normalizePath is idempotent and never leaves dot segments or empty segments', () => {
  let defined = 0;
  for (let i = 0; i < 5000; i++) {
    const raw = randomPath();
    const n = normalizePath(raw);
    if (n === undefined) continue;
    defined++;
    assert.equal(normalizePath(n), n, `idempotent for ${JSON.stringify(raw)} -> ${n}`);
    assert.ok(n.startsWith('/'));
    const segs = n.split('/').slice(1, n.endsWith('/') ? -1 : undefined);
    for (const s of segs) {
      assert.notEqual(s, '.', n);
      assert.notEqual(s, '..', n);
      if (n !== '/') assert.notEqual(s, '', n);
    }
    assert.ok(!/%(2[eE]|4[1-9A-Fa-f]|7[eE])/.test(n), `unreserved escapes decoded in ${n}`);
    assert.ok(!/%[0-9A-F]?[a-f]/.test(n), `hex is upper case in ${n}`);
    assert.ok(!n.includes('?') && !n.includes('#'));
  }
  assert.ok(defined > 2500, `most random paths normalise (${defined})`);
});

test('property: "/seg/**" matches exactly /seg and what is below it, after normalisation', () => {
  const g = compileGlob('/my-org/**');
  assert.ok(!('error' in g));
  for (let i = 0; i < 5000; i++) {
    const n = normalizePath(randomPath());
    if (n === undefined) continue;
    const expected = n === '/my-org' || n.startsWith('/my-org/');
    assert.equal(g.re.test(n), expected, n);
  }
});

test('property: canonicalHost is idempotent; IPv4 spellings agree; mapped IPv6 classifies like IPv4', () => {
  for (let i = 0; i < 3000; i++) {
    const v = int(2 ** 32);
    const bytes = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
    const dotted = bytes.join('.');
    const spellings = [
      String(v),
      '0x' + v.toString(16),
      '0' + v.toString(8),
      bytes.map((b) => (R() < 0.5 ? '0x' + b.toString(16) : b === 0 ? '0' : '0' + b.toString(8))).join('.'),
      `${bytes[0]}.${bytes[1]}.${bytes[2] * 256 + bytes[3]}`,
      `${bytes[0]}.${(bytes[1] << 16) + (bytes[2] << 8) + bytes[3]}`,
      dotted + '.',
    ];
    for (const s of spellings) assert.deepEqual(canonicalHost(s), { kind: 'ipv4', host: dotted }, s);
    const mapped = `::ffff:${dotted}`;
    assert.equal(classifyAddress(mapped), classifyAddress(dotted), mapped);
    assert.equal(classifyAddress(`[${mapped}]`), classifyAddress(dotted));
    const groups = Array.from({ length: 8 }, () => (R() < 0.4 ? 0 : int(65536)));
    const full = groups.map((x) => x.toString(16).padStart(R() < 0.5 ? 4 : 1, '0')).join(':');
    const c = canonicalHost(full);
    assert.ok(c && c.kind === 'ipv6', full);
    assert.deepEqual(canonicalHost(c.host), c, `idempotent ${full}`);
    assert.deepEqual(canonicalHost(`[${c.host.toUpperCase()}]`), c);
    const d = domain();
    assert.deepEqual(canonicalHost(randomCase(d) + '.'), { kind: 'name', host: d });
  }
});

const printable = ' \t\n!"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~é\u0000\r';
const SAMPLE = `version: 1
allow:
  - host: api.anthropic.com   # c
  - host: "*.npmjs.org"
  - host: github.com
    methods: [GET, HEAD]
    paths: ["/my-org/**"]
  - host: api.github.com
    auth: { scheme: Bearer, secret: github }
deny:
  - host: gist.github.com
`;

function mutate(s: string): string {
  let out = s;
  const n = 1 + int(4);
  for (let i = 0; i < n; i++) {
    const at = int(out.length + 1);
    const op = int(3);
    if (op === 0) out = out.slice(0, at) + out.slice(at + 1 + int(3));
    else if (op === 1) out = out.slice(0, at) + pick(printable.split('')) + out.slice(at);
    else out = out.slice(0, at) + pick(['- ', ': ', '[', ']', '{', '}', '*', '&a ', '*a', '"', "'", '\n  ', '#', '!!str ', '? ', '---\n', '|\n']) + out.slice(at);
  }
  return out;
}

test('property: parsePolicy never throws and always explains errors with positions', () => {
  const inputs: string[] = [];
  for (let i = 0; i < 1500; i++) inputs.push(mutate(SAMPLE));
  for (let i = 0; i < 500; i++) inputs.push(Array.from({ length: int(80) }, () => pick(printable.split(''))).join(''));
  inputs.push('&a [*a, *a]', '*x', '!!binary aGVsbG8=', 'version: !!float 1', '{'.repeat(500), '- '.repeat(300) + 'x');
  for (const text of inputs) {
    let r;
    assert.doesNotThrow(() => {
      r = parsePolicy(text);
    }, JSON.stringify(text));
    const res = r! as ReturnType<typeof parsePolicy>;
    assert.equal(res.policy === undefined, res.errors.length > 0, JSON.stringify(text));
    for (const e of [...res.errors, ...res.warnings]) {
      assert.ok(e.pos.line >= 1 && e.pos.col >= 1, JSON.stringify(e));
      assert.ok(typeof e.message === 'string' && e.message.length > 0 && !e.message.startsWith('the policy could not be read'), `${JSON.stringify(text)}: ${e.message}`);
    }
    if (res.policy) {
      // A policy that parsed decides without throwing, too.
      assert.doesNotThrow(() => decide({ host: 'github.com', port: 443, method: 'GET', path: '/my-org/x' }, res.policy));
    }
  }
  for (const v of [undefined, null, 42, {}] as unknown[]) assert.equal(parsePolicy(v as string).errors.length, 1);
});

test('property: decide never throws on hostile requests', () => {
  const p = policyOf(SAMPLE);
  for (let i = 0; i < 3000; i++) {
    const host = pick([domain(), randomCase('GitHub.com.'), '[' + pick(printable.split('')) + ']', Array.from({ length: int(20) }, () => pick(printable.split(''))).join(''), '::ffff:' + int(999), String(int(2 ** 33))]);
    const path = R() < 0.5 ? randomPath() : Array.from({ length: int(30) }, () => pick(printable.split(''))).join('');
    const method = pick([undefined, 'GET', 'get', 'BREW', '']);
    const port = pick([443, 80, 0, -1, 65536, NaN, 8443]);
    const d = decide({ host, port, method, path: method === undefined && R() < 0.5 ? undefined : path }, p);
    assert.ok(d.action === 'allow' || d.action === 'deny');
    assert.ok(d.message.length > 0);
    if (d.action === 'allow') {
      assert.equal(canonicalHost(host)?.kind, 'name');
      assert.ok([80, 443].includes(port));
    }
  }
});

test('property: edits on valid files keep them valid; on any file they return text or throw an Error', () => {
  const specs = [{ host: 'a.example.com' }, { host: '*.example.org', methods: ['GET'] }, { host: 'b.example.com', port: 8443, paths: ['/x/**'] }];
  let text = starterPolicy();
  for (let i = 0; i < 200; i++) {
    const r = parsePolicy(text);
    assert.deepEqual(r.errors, [], text);
    const n = r.policy!.allow.length;
    const op = int(5);
    if (op === 0 || n === 0) text = addAllow(text, { ...pick(specs), host: label() + '.' + pick(['example.com', 'example.net']) }).text;
    else if (op === 1) text = removeEntry(text, 'allow', int(n)).text;
    else if (op === 2) text = setDisabled(text, 'allow', int(n), R() < 0.5).text;
    else if (op === 3) text = updateEntry(text, 'allow', int(n), pick(specs)).text;
    else {
      text = moveEntry(text, 'allow', int(n)).text;
      const d = parsePolicy(text).policy!.deny.length;
      if (d > 0) text = moveEntry(text, 'deny', int(d)).text;
    }
    assert.ok(text.startsWith('# Caged Agent egress policy\n'), 'the header comment survives');
  }
  for (let i = 0; i < 300; i++) {
    const t = mutate(SAMPLE);
    const yamlOk = (x: string) => !parsePolicy(x).errors.some((e) => e.message.startsWith('YAML syntax error'));
    const before = yamlOk(t);
    const edits = [
      () => addAllow(t, { host: 'z.example.com' }),
      () => setDisabled(t, 'allow', 0, true),
      () => removeEntry(t, 'allow', 1),
      () => moveEntry(t, 'allow', 0),
      () => updateEntry(t, 'allow', 0, { host: 'y.example.com', methods: ['GET'] }),
    ];
    for (const edit of edits) {
      try {
        const out = edit().text;
        if (before) assert.ok(yamlOk(out), `edit broke the YAML:\n${t}\n---\n${out}`);
      } catch (e) {
        assert.ok(e instanceof Error);
        assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `${JSON.stringify(t)}: ${(e as Error).stack}`);
      }
    }
    try {
      edits[0]();
    } catch (e) {
      assert.ok(e instanceof Error);
      assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `${JSON.stringify(t)}: ${(e as Error).stack}`);
    }
  }
});
