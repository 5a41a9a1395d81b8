// The "Blocked requests" document: one line per blocked host:port that no rule matches (logic/anchors.ts), each the
// anchor of that host's diagnostic and quick fixes. Served by a file system provider of its own scheme rather than
// a read-only content provider, because VS Code offers no code actions (Ctrl+., the lightbulb) in a read-only
// editor; a save is refused, the text is always the extension's. Redrawn with the blocks.
import * as vscode from 'vscode';
import { blockedDocumentText, type BlockLayout } from './logic/anchors';

export const BLOCKED_SCHEME = 'caged-agent-blocked';
export const BLOCKED_URI = vscode.Uri.from({ scheme: BLOCKED_SCHEME, path: '/Blocked requests' });

export class BlockedDocument implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;
  private bytes = new TextEncoder().encode(blockedDocumentText([]));
  private mtime = Date.now();

  /** The diagnostics' layout changed: the document shows its unmatched groups. */
  update(layout: BlockLayout): void {
    const text = new TextEncoder().encode(blockedDocumentText(layout.unmatched));
    if (Buffer.from(text).equals(Buffer.from(this.bytes))) return;
    this.bytes = text;
    this.mtime = Math.max(Date.now(), this.mtime + 1);
    this.emitter.fire([{ type: vscode.FileChangeType.Changed, uri: BLOCKED_URI }]);
  }

  private check(uri: vscode.Uri): void {
    if (uri.path !== BLOCKED_URI.path) throw vscode.FileSystemError.FileNotFound(uri);
  }

  stat(uri: vscode.Uri): vscode.FileStat {
    if (uri.path === '/') return { type: vscode.FileType.Directory, ctime: 0, mtime: this.mtime, size: 0 };
    this.check(uri);
    return { type: vscode.FileType.File, ctime: 0, mtime: this.mtime, size: this.bytes.length };
  }

  readFile(uri: vscode.Uri): Uint8Array {
    this.check(uri);
    return this.bytes;
  }

  readDirectory(): [string, vscode.FileType][] {
    return [[BLOCKED_URI.path.slice(1), vscode.FileType.File]];
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => {});
  }

  writeFile(): void {
    throw vscode.FileSystemError.NoPermissions('The Blocked requests list is written by Caged Agent; use its quick fixes (Ctrl+.) to change the policy.');
  }

  createDirectory(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  delete(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  rename(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
