// Extension-host tests of the real vscode API surface, without Docker: commands, diagnostics from events,
// quick fixes editing the policy file, validation errors, allowlist edits, settings.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { entryKey } from '../../src/policy';
import { BLOCKED_DOC, EXT_ID, controller, quickFixes, sleep, waitFor } from './helpers';

interface DebugState {
  activeCageId?: string;
  blocks: { key: string; count: number; reason: string; paths: string[] }[];
  policyErrors: string[] | null;
  policyPath: string;
  counts: Record<string, number>;
}

async function state(): Promise<DebugState> {
  return (await vscode.commands.executeCommand('cagedAgent._state')) as DebugState;
}

function policyDiagnostics(uri: vscode.Uri): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'Caged Agent');
}

/** The diagnostics of the read-only Blocked requests document: one line per blocked host that no rule matches. */
function blockedDiagnostics(): vscode.Diagnostic[] {
  return policyDiagnostics(BLOCKED_DOC);
}

/** A block's diagnostic in the Blocked requests document, once the open document shows its line too. */
async function blockedLine(what: string, host: string): Promise<vscode.Diagnostic> {
  return waitFor(what, async () => {
    const d = blockedDiagnostics().find((x) => x.message.includes(host));
    if (!d) return undefined;
    const doc = await vscode.workspace.openTextDocument(BLOCKED_DOC);
    return d.range.start.line < doc.lineCount && doc.lineAt(d.range.start.line).text.includes(host) ? d : undefined;
  });
}

async function readText(uri: vscode.Uri): Promise<string> {
  return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
}

async function writeText(uri: vscode.Uri, text: string): Promise<void> {
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
}

/** How much each count grew between two states. */
function grew(before: DebugState, after: DebugState, name: string): number {
  return (after.counts[name] ?? 0) - (before.counts[name] ?? 0);
}

function allowEvent(host: string) {
  return { time: new Date().toISOString(), type: 'allow', host, port: 443, method: 'GET', path: '/', reason: 'allowed', rule: 'allow[0]' };
}

function blockEvent(host: string, method = 'GET', path = '/v1/models') {
  return { time: new Date().toISOString(), type: 'block', host, port: 443, method, path, reason: 'no-matching-rule', rule: null };
}

describe('Caged Agent in the extension host', function () {
  this.timeout(60000);
  let policyUri: vscode.Uri;

  before(async () => {
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.ok(ext, `extension ${EXT_ID} is installed`);
    await ext.activate();
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the tests run with a workspace folder open');
    await vscode.workspace.getConfiguration('cagedAgent').update('notifications', 'off', vscode.ConfigurationTarget.Workspace);
    policyUri = vscode.Uri.file((await state()).policyPath);
    try {
      await vscode.workspace.fs.delete(policyUri);
    } catch {}
  });

  it('registers every palette command', async () => {
    const all = new Set(await vscode.commands.getCommands(true));
    for (const id of ['start', 'stop', 'openTerminal', 'allowHost', 'openPolicy', 'verify', 'showLog', 'cleanUp']) {
      assert.ok(all.has(`cagedAgent.${id}`), `cagedAgent.${id} is registered`);
    }
  });

  it('Allow Host with an argument creates a commented starter policy holding the host', async () => {
    assert.equal(await vscode.commands.executeCommand('cagedAgent.allowHost', 'registry.npmjs.org'), true);
    const text = await readText(policyUri);
    assert.match(text, /^version: 1/m);
    assert.match(text, /#/, 'the starter policy explains itself in comments');
    assert.match(text, /host: registry\.npmjs\.org/);
    assert.deepEqual((await state()).policyErrors, []);
  });

  it('a block event becomes a diagnostic on the policy file, with Allow quick fixes that edit it away', async () => {
    await vscode.commands.executeCommand('cagedAgent._injectEvent', blockEvent('api.example.com'));
    await vscode.commands.executeCommand('cagedAgent._injectEvent', blockEvent('api.example.com'));
    const diag = await blockedLine('the block diagnostic', 'api.example.com');
    assert.match(diag.message, /^Caged agent blocked api\.example\.com:443 — GET \/v1\/models, 2 times, last at \d\d:\d\d/);
    assert.equal(diag.severity, vscode.DiagnosticSeverity.Warning);
    // The policy file keeps a Problem too: the summary on its allow: key.
    assert.ok(policyDiagnostics(policyUri).some((d) => d.code === 'blocked-unmatched' && d.message.includes('api.example.com')));

    const actions = await quickFixes(BLOCKED_DOC, diag.range);
    const titles = actions.map((a) => a.title);
    assert.ok(titles.includes('Allow api.example.com'), `exact choice offered: ${titles.join(' | ')}`);
    assert.ok(titles.includes('Allow *.example.com'), `parent choice offered: ${titles.join(' | ')}`);
    assert.ok(titles.every((t) => t.startsWith('Allow')), 'quick-fix titles begin with Allow');
    assert.ok(titles.some((t) => /GET .*\/v1/.test(t)), `method/path choice offered: ${titles.join(' | ')}`);

    const exact = actions.find((a) => a.title === 'Allow api.example.com')!;
    await vscode.commands.executeCommand(exact.command!.command, ...(exact.command!.arguments ?? []));
    assert.match(await readText(policyUri), /host: api\.example\.com/);
    assert.match(await readText(policyUri), /registry\.npmjs\.org/, 'earlier entries are kept');
    await waitFor('the diagnostic to disappear', () => !blockedDiagnostics().some((d) => d.message.includes('api.example.com')));
    assert.ok(!(await state()).blocks.some((b) => b.key === 'api.example.com:443'), 'the block is gone from the store too');
  });

  it('no *.parent choice for a public suffix', async () => {
    await vscode.commands.executeCommand('cagedAgent._injectEvent', blockEvent('example.com'));
    const diag = await blockedLine('the block diagnostic', ' example.com:443');
    const actions = await quickFixes(BLOCKED_DOC, diag.range);
    assert.ok(!actions.some((a) => a.title === 'Allow *.com'), 'never offers *.com');
    assert.ok(actions.some((a) => a.title === 'Allow example.com'), 'the exact choice is still there');
  });

  it('a raw TCP block (an ssh to port 22) shows as a diagnostic whose quick fix writes tcp: [22] and cures it', async () => {
    const e = { time: new Date().toISOString(), type: 'block', host: 'ssh.i19.example.com', port: 22, method: 'TCP', path: '', reason: 'no-matching-rule', rule: null };
    await vscode.commands.executeCommand('cagedAgent._injectEvent', e);
    // No rule matched it: its line is in the Blocked requests document, with only its own fixes there.
    const diag = await blockedLine('the TCP block diagnostic', 'ssh.i19.example.com:22');
    assert.match(diag.message, /^Caged agent blocked ssh\.i19\.example\.com:22 — TCP, once/);
    const actions = await quickFixes(BLOCKED_DOC, diag.range);
    const titles = actions.map((a) => a.title);
    assert.ok(titles.includes('Allow TCP 22 to ssh.i19.example.com'), titles.join(' | '));
    assert.ok(titles.every((t) => t.startsWith('Allow TCP 22 to ')), `no HTTP choices for raw TCP, no other host's: ${titles.join(' | ')}`);
    const fix = actions.find((a) => a.title === 'Allow TCP 22 to ssh.i19.example.com')!;
    await vscode.commands.executeCommand(fix.command!.command, ...(fix.command!.arguments ?? []));
    assert.match(await readText(policyUri), /- host: ssh\.i19\.example\.com\n\s+tcp: \[22\]/);
    await waitFor('the TCP diagnostic to disappear', () => !blockedDiagnostics().some((d) => d.message.includes('ssh.i19.example.com:22')));
  });

  it('policy validation errors show at the right line, and clear when fixed', async () => {
    const good = await readText(policyUri);
    await writeText(policyUri, 'version: 1\nallow:\n  - host: ok.example.com\n  - hots: typo.example.com\n');
    const err = await waitFor('the validation diagnostic', () => policyDiagnostics(policyUri).find((d) => d.severity === vscode.DiagnosticSeverity.Error));
    assert.equal(err.range.start.line, 3, `error on line 4 (0-based 3): ${err.message}`);
    assert.match(err.message, /hots/);
    await writeText(policyUri, good);
    await waitFor('the error to clear', () => !policyDiagnostics(policyUri).some((d) => d.severity === vscode.DiagnosticSeverity.Error));
  });

  it('allowlist add / edit / toggle / remove go through comment-preserving edits', async () => {
    await writeText(policyUri, '# my notes stay\nversion: 1\nallow:\n  - host: keep.example.com # keep me\n');
    await waitFor('the policy to reload', async () => (await state()).policyErrors?.length === 0 && (await readText(policyUri)).includes('keep.example.com'));
    await sleep(300);
    assert.equal(await vscode.commands.executeCommand('cagedAgent.addRule', 'allow', 'new.example.com'), true);
    let text = await readText(policyUri);
    assert.match(text, /# my notes stay/);
    assert.match(text, /keep\.example\.com # keep me/);
    assert.match(text, /new\.example\.com/);

    // The same item the sidebar hands to its inline actions: a tree item carrying the parsed rule.
    const rule = (host: string) => {
      const r = controller().policyParse?.policy?.allow.find((x) => x.hostText === host);
      assert.ok(r, `${host} is in the parsed allowlist`);
      return { rule: r };
    };
    assert.equal(await vscode.commands.executeCommand('cagedAgent.editRule', rule('new.example.com'), 'renamed.example.com:8443'), true);
    text = await readText(policyUri);
    assert.match(text, /renamed\.example\.com:8443/);
    assert.doesNotMatch(text, /new\.example\.com/);

    assert.equal(await vscode.commands.executeCommand('cagedAgent.toggleRule', rule('renamed.example.com')), true);
    text = await readText(policyUri);
    assert.match(text, /disabled: true/);

    assert.equal(await vscode.commands.executeCommand('cagedAgent.removeRule', rule('renamed.example.com'), false), true);
    text = await readText(policyUri);
    assert.doesNotMatch(text, /renamed\.example\.com/);
    assert.match(text, /keep\.example\.com # keep me/);

    assert.equal(await vscode.commands.executeCommand('cagedAgent.addRule', 'deny', 'gist.github.com'), true);
    assert.match(await readText(policyUri), /deny:[\s\S]*gist\.github\.com/);
  });

  it('a burst of allowed requests redraws the Cages view once and reads no policy; one save parses the policy once', async () => {
    await sleep(500);
    const t0 = await state();
    for (let i = 0; i < 20; i++) await vscode.commands.executeCommand('cagedAgent._injectEvent', allowEvent('keep.example.com'));
    await sleep(400);
    const t1 = await state();
    assert.equal(grew(t0, t1, 'tree.cages'), 1, 'the request counts are drawn once for the burst');
    for (const n of ['tree.blocks', 'tree.allowlist', 'diagnostics', 'policy.reads', 'policy.parses']) assert.equal(grew(t0, t1, n), 0, `${n} after allowed requests`);

    // An edit saved in the editor: the change, the save and the file watcher each trigger a refresh.
    const doc = await vscode.workspace.openTextDocument(policyUri);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(policyUri, new vscode.Position(doc.lineCount, 0), '# saved once\n');
    assert.ok(await vscode.workspace.applyEdit(edit));
    assert.ok(await doc.save());
    await waitFor('the saved text on disk', async () => (await readText(policyUri)).includes('# saved once'));
    await sleep(1000);
    const t2 = await state();
    assert.equal(grew(t1, t2, 'policy.parses'), 1, 'the new text is parsed once');
    assert.equal(grew(t1, t2, 'tree.allowlist'), 1, 'the allowlist is redrawn once');
    assert.equal(grew(t1, t2, 'diagnostics'), 1, 'the diagnostics are redrawn once');
    assert.equal(grew(t1, t2, 'tree.blocks'), 0);
  });

  it('each block has a line of its own and its own code; the quick fixes there are only its own', async () => {
    for (const h of ['one.anchor-i18.test', 'two.anchor-i18.test', 'three.anchor-i18.test']) await vscode.commands.executeCommand('cagedAgent._injectEvent', blockEvent(h));
    // Once the open document shows their lines too (it is re-read after the diagnostics are set).
    const diags = await waitFor('three block diagnostics', async () => {
      const d = blockedDiagnostics().filter((x) => /anchor-i18\.test/.test(x.message));
      if (d.length !== 3) return undefined;
      const doc = await vscode.workspace.openTextDocument(BLOCKED_DOC);
      return d.every((x) => x.range.start.line < doc.lineCount && doc.lineAt(x.range.start.line).text.includes(String(x.code))) ? d : undefined;
    });
    assert.deepEqual(diags.map((d) => d.code).sort(), ['one.anchor-i18.test:443', 'three.anchor-i18.test:443', 'two.anchor-i18.test:443']);
    assert.equal(new Set(diags.map((d) => d.range.start.line)).size, 3, 'three lines');
    const text = (await vscode.workspace.openTextDocument(BLOCKED_DOC)).getText().split('\n');
    for (const d of diags) {
      assert.ok(text[d.range.start.line].includes(String(d.code).replace(/:443$/, '')), `the line of ${d.code} names it: ${text[d.range.start.line]}`);
      const titles = (await quickFixes(BLOCKED_DOC, d.range)).map((a) => a.title);
      const host = String(d.code).replace(/:443$/, '');
      assert.ok(titles.includes(`Allow ${host}`), `${host}: ${titles.join(' | ')}`);
      assert.ok(titles.every((t) => !/anchor-i18/.test(t) || t.includes(host) || t === 'Allow *.anchor-i18.test'), `only ${host}'s fixes: ${titles.join(' | ')}`);
      assert.equal(titles.filter((t) => t === 'Allow *.anchor-i18.test').length, 1, 'the parent choice once');
    }
    // A block a rule decided sits on that rule's entry (here: a deny entry).
    const before = await readText(policyUri);
    await writeText(policyUri, 'version: 1\nallow:\n  - host: registry.npmjs.org\ndeny:\n  - host: denied.anchor-i18.test\n');
    await waitFor('the deny rule parsed', () => controller().policyParse?.policy?.deny.some((r) => r.hostText === 'denied.anchor-i18.test'));
    const rule = controller().policyParse!.policy!.deny.find((r) => r.hostText === 'denied.anchor-i18.test')!;
    await vscode.commands.executeCommand('cagedAgent._injectEvent', { ...blockEvent('denied.anchor-i18.test'), reason: 'denied-by-rule', rule: 'deny[0]', ruleKey: entryKey(rule) });
    const onRule = await waitFor('the deny block on its rule', () => policyDiagnostics(policyUri).find((d) => d.code === 'denied.anchor-i18.test:443'));
    assert.equal(onRule.range.start.line, rule.pos.line - 1);
    await writeText(policyUri, before);
    for (const h of ['one', 'two', 'three', 'denied']) controller().session.dismissBlock(`${h}.anchor-i18.test:443`);
  });

  it('a quick fix offered before a refresh still applies when picked after it, deciding again under the policy of then', async () => {
    await vscode.commands.executeCommand('cagedAgent._injectEvent', blockEvent('stale.fix-i18.test'));
    const diag = await blockedLine('the block diagnostic', 'stale.fix-i18.test:443');
    const exact = (await quickFixes(BLOCKED_DOC, diag.range)).find((a) => a.title === 'Allow stale.fix-i18.test')!;
    assert.ok(exact?.command, 'the exact choice is offered');
    assert.equal(exact.command.arguments?.length ?? 0, 0, 'the command carries its fix in its id, not in arguments a refresh drops');
    // Refreshes: more blocks, a policy edit; the actions are computed anew each time.
    for (let i = 0; i < 3; i++) await vscode.commands.executeCommand('cagedAgent._injectEvent', blockEvent(`other${i}.fix-i18.test`));
    await writeText(policyUri, `${(await readText(policyUri)).replace(/\n*$/, '\n')}# refreshed\n`);
    await waitFor('the refresh', async () => (await vscode.workspace.openTextDocument(policyUri)).getText().includes('# refreshed') && blockedDiagnostics().some((d) => d.code === 'other2.fix-i18.test:443'));
    for (let i = 0; i < 3; i++) await quickFixes(BLOCKED_DOC, diag.range);
    assert.equal(await vscode.commands.executeCommand(exact.command.command), true, 'the stale item applies');
    assert.match(await readText(policyUri), /- host: stale\.fix-i18\.test/);
    // Picked once more (the menu was still open): the policy already allows it, nothing is added twice.
    assert.equal(await vscode.commands.executeCommand(exact.command.command), true);
    assert.equal((await readText(policyUri)).match(/host: stale\.fix-i18\.test/g)?.length, 1, 'no duplicate entry');
    for (let i = 0; i < 3; i++) controller().session.dismissBlock(`other${i}.fix-i18.test:443`);
  });

  it('honours the policyPath setting', async () => {
    const cfg = vscode.workspace.getConfiguration('cagedAgent');
    await cfg.update('policyPath', 'custom/allow.yaml', vscode.ConfigurationTarget.Workspace);
    try {
      await waitFor('the new policy path', async () => (await state()).policyPath.endsWith('custom/allow.yaml'));
      assert.equal(await vscode.commands.executeCommand('cagedAgent.allowHost', 'x.example.com'), true);
      const uri = vscode.Uri.file((await state()).policyPath);
      assert.match(await readText(uri), /x\.example\.com/);
      await vscode.workspace.fs.delete(vscode.Uri.joinPath(uri, '..'), { recursive: true });
    } finally {
      await cfg.update('policyPath', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });
});
