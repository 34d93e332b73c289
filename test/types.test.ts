/**
 * Typed end to end: `tsc` on the fixtures in test/fixtures/types. `ok-*.ts` must compile cleanly; in `fail-*.ts`
 * every line marked `// ✗ <text>` must get a compile error containing <text>, and no other line may get one.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test', 'fixtures', 'types');
const MARK = '// ✗ ';

interface Diagnostic {
  line: number;
  text: string;
}

/** tsc's diagnostics by fixture file name (a diagnostic's text includes its indented continuation lines). */
function parseDiagnostics(output: string): Map<string, Diagnostic[]> {
  const byFile = new Map<string, Diagnostic[]>();
  let current: Diagnostic | undefined;
  for (const line of output.split('\n')) {
    const head = /^(.+?)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line);
    if (head) {
      const file = path.basename(head[1]!);
      current = { line: Number(head[2]), text: head[3]! };
      byFile.set(file, [...(byFile.get(file) ?? []), current]);
    } else if (current && /^\s/.test(line)) {
      current.text += `\n${line.trim()}`;
    }
  }
  return byFile;
}

describe('typed DAGs, activities and projects (tsc on fixtures)', () => {
  let work: string;
  let diagnostics: Map<string, Diagnostic[]>;
  const files = readdirSync(fixtures).filter((f) => f.endsWith('.ts'));

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tempoflow-types-'));
    const tsconfig = {
      extends: path.join(root, 'tsconfig.json'),
      compilerOptions: { noEmit: true, typeRoots: [path.join(root, 'node_modules', '@types')] },
      files: files.map((f) => path.join(fixtures, f)),
      include: [],
      exclude: [],
    };
    writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const output = await new Promise<string>((resolve) => {
      execFile(process.execPath, [tsc, '-p', work, '--pretty', 'false'], { cwd: root }, (_err, stdout, stderr) =>
        resolve(stdout + stderr),
      );
    });
    diagnostics = parseDiagnostics(output);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('there are passing and failing fixtures', () => {
    assert.ok(files.some((f) => f.startsWith('ok-')));
    assert.ok(files.filter((f) => f.startsWith('fail-')).length >= 3);
  });

  for (const file of files) {
    const lines = readFileSync(path.join(fixtures, file), 'utf8').split('\n');
    const expected = lines
      .map((text, i) => ({
        line: i + 1,
        want: text.includes(MARK) ? text.slice(text.indexOf(MARK) + MARK.length) : '',
      }))
      .filter((e) => e.want);

    test(`${file}: ${file.startsWith('ok-') ? 'compiles' : `fails where marked (${expected.length})`}`, () => {
      const got = diagnostics.get(file) ?? [];
      if (file.startsWith('ok-')) {
        assert.deepEqual(got, [], `${file} should compile`);
        return;
      }
      assert.ok(expected.length > 0, `${file} marks no expected error`);
      for (const { line, want } of expected) {
        const here = got.filter((d) => d.line === line);
        assert.ok(
          here.some((d) => d.text.includes(want.trim())),
          `${file}:${line}: expected an error containing "${want.trim()}", got ${JSON.stringify(here.map((d) => d.text))}`,
        );
      }
      const unexpected = got.filter((d) => !expected.some((e) => e.line === d.line));
      assert.deepEqual(unexpected, [], `${file}: errors on unmarked lines`);
    });
  }
});
