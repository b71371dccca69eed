/**
 * Enforces that lib/raft stays a pure core (ARCHITECTURE.md §2): no I/O, no
 * clock, no ambient randomness, no async, and no imports from outside the
 * folder. Purity is what lets the simulator replay any failing seed exactly,
 * so it is checked mechanically rather than left to review.
 *
 * The scanner is deliberately small: a lexer blanks out comments and literal
 * text (so JSDoc or an error message may say "Date" or "await") while keeping
 * code inside template `${...}`; regexes then look for forbidden tokens.
 * Known limit: a regex literal containing a quote, a backtick or `//` can
 * confuse the lexer; the core has no reason to use such regexes.
 */

import assert from "node:assert/strict";

/** One forbidden construct found in a source file. */
export interface Violation {
  /** 1-based line number. */
  line: number;
  /** What was found, e.g. `Date` or `import "node:fs"`. */
  token: string;
}

/** Forbidden tokens with the reason each breaks determinism or purity. */
const FORBIDDEN: readonly { pattern: RegExp; why: string }[] = [
  { pattern: /\bDeno\./g, why: "I/O belongs to the driver" },
  { pattern: /\bMath\.random\b/g, why: "randomness comes from the injected generator" },
  { pattern: /\bDate\b/g, why: "time is ticks" },
  { pattern: /\bperformance\./g, why: "time is ticks" },
  { pattern: /\b(?:setTimeout|setInterval|queueMicrotask)\b/g, why: "no timers" },
  { pattern: /\b(?:await|async|Promise)\b/g, why: "the core is synchronous" },
  { pattern: /\bfetch\s*\(/g, why: "I/O belongs to the driver" },
  { pattern: /\bimport\s*\(/g, why: "no dynamic imports" },
];

/** Static `import`/`export ... from "x"` and side-effect `import "x"`, possibly multi-line. */
const IMPORT_FROM = /\b(?:import|export)\s+(?:type\s+)?[\w$*{},\s]*?\bfrom\s*(["'])([^"'\n]*)\1/g;
const IMPORT_BARE = /\bimport\s*(["'])([^"'\n]*)\1/g;

/** A source file with parts blanked out; both keep every newline so line numbers stay right. */
export interface Masked {
  /** Comments blanked; string and template literals intact (import specifiers are read here). */
  noComments: string;
  /** Comments and literal text blanked; `${...}` expressions inside templates kept (they are code). */
  codeOnly: string;
}

/**
 * Blanks comments and literal text out of TypeScript `source` with a small
 * lexer: a `//` inside a string is not a comment, a `Date` in an error message
 * is not a clock read, but `${Date.now()}` in a template is code.
 */
export function maskSource(source: string): Masked {
  let noComments = "";
  let codeOnly = "";
  const blank = (text: string) => text.replace(/[^\n]/g, " ");
  // Brace depth inside each open `${`, innermost last: a `}` at depth 0 resumes the template.
  const templateDepths: number[] = [];
  let inTemplateText = false;
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    let end: number;
    if (inTemplateText) {
      end = i;
      while (end < source.length && source[end] !== "`" && !source.startsWith("${", end)) {
        end += source[end] === "\\" ? 2 : 1;
      }
      const text = source.slice(i, end);
      const closer = source.startsWith("${", end) ? "${" : source.slice(end, end + 1);
      noComments += text + closer;
      codeOnly += blank(text) + closer;
      if (closer === "${") templateDepths.push(0);
      inTemplateText = false;
      i = end + closer.length;
      continue;
    }
    if (c === "/" && (next === "/" || next === "*")) {
      const close = next === "/" ? source.indexOf("\n", i) : source.indexOf("*/", i + 2);
      end = close === -1 ? source.length : next === "/" ? close : close + 2;
      noComments += blank(source.slice(i, end));
      codeOnly += blank(source.slice(i, end));
    } else if (c === '"' || c === "'") {
      end = i + 1;
      while (end < source.length && source[end] !== c && source[end] !== "\n") {
        end += source[end] === "\\" ? 2 : 1;
      }
      end = Math.min(end + 1, source.length);
      noComments += source.slice(i, end);
      codeOnly += c + blank(source.slice(i + 1, end - 1)) + source.slice(end - 1, end);
    } else {
      end = i + 1;
      noComments += c;
      codeOnly += c;
      const depth = templateDepths.length - 1;
      if (c === "`") inTemplateText = true;
      else if (c === "{" && depth >= 0) templateDepths[depth]!++;
      else if (c === "}" && depth >= 0) {
        if (templateDepths[depth] === 0) {
          templateDepths.pop();
          inTemplateText = true;
        } else templateDepths[depth]!--;
      }
    }
    i = end;
  }
  return { noComments, codeOnly };
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let k = 0; k < offset; k++) if (text.charCodeAt(k) === 10) line++;
  return line;
}

/** Returns every purity violation in TypeScript `source`, in source order. */
export function findViolations(source: string): Violation[] {
  const { noComments, codeOnly } = maskSource(source);
  const found: { offset: number; token: string }[] = [];
  for (const { pattern } of FORBIDDEN) {
    for (const m of codeOnly.matchAll(pattern)) found.push({ offset: m.index, token: m[0] });
  }
  for (const pattern of [IMPORT_FROM, IMPORT_BARE]) {
    for (const m of noComments.matchAll(pattern)) {
      const specifier = m[2] ?? "";
      // "./x.ts" stays in the folder; "../", absolute, npm:, node:, jsr: do not.
      if (!specifier.startsWith("./")) {
        found.push({ offset: m.index, token: `import "${specifier}"` });
      }
    }
  }
  found.sort((a, b) => a.offset - b.offset);
  return found.map((f) => ({ line: lineOf(noComments, f.offset), token: f.token }));
}

/** Lists every .ts file under `dir` (recursively), sorted, as paths relative to the repo root. */
function listTsFiles(dir: URL, prefix: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isDirectory) {
      files.push(...listTsFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`));
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      files.push(`${prefix}${entry.name}`);
    }
  }
  return files.sort();
}

const REPO_ROOT = new URL("../../", import.meta.url);

Deno.test("lib/raft is pure: no I/O, clock, randomness, async or outside imports", () => {
  const files = listTsFiles(new URL("lib/raft/", REPO_ROOT), "lib/raft/");
  // Guards against a vacuous pass if the folder moves or the glob breaks.
  assert.ok(files.length >= 3, `expected at least 3 .ts files in lib/raft/, found ${files.length}`);
  const report: string[] = [];
  for (const file of files) {
    const source = Deno.readTextFileSync(new URL(file, REPO_ROOT));
    for (const v of findViolations(source)) report.push(`${file}:${v.line}: ${v.token}`);
  }
  assert.deepEqual(
    report,
    [],
    `lib/raft must stay pure (see ARCHITECTURE.md §2):\n${report.join("\n")}`,
  );
});

Deno.test("purity scanner reports each forbidden construct with its line", () => {
  const sample = [
    'import { x } from "./ok.ts";', // 1: allowed
    'import type {\n  Y,\n} from "../outside.ts";', // 2-4: outside the folder
    'import "node:fs";', // 5
    "export * from 'npm:left-pad@1';", // 6
    "const t = Date.now();", // 7
    "const r = Math.random();", // 8
    "async function f() { await fetch('x'); }", // 9: async, await, fetch(
    "setTimeout(() => {}, 1); queueMicrotask(() => {});", // 10
    "const p: Promise<void> = Deno.readFile('x');", // 11: Promise, Deno.
    "performance.now(); const m = import('./x.ts');", // 12
  ].join("\n");
  assert.deepEqual(findViolations(sample), [
    { line: 2, token: 'import "../outside.ts"' },
    { line: 5, token: 'import "node:fs"' },
    { line: 6, token: 'import "npm:left-pad@1"' },
    { line: 7, token: "Date" },
    { line: 8, token: "Math.random" },
    { line: 9, token: "async" },
    { line: 9, token: "await" },
    { line: 9, token: "fetch(" },
    { line: 10, token: "setTimeout" },
    { line: 10, token: "queueMicrotask" },
    { line: 11, token: "Promise" },
    { line: 11, token: "Deno." },
    { line: 12, token: "performance." },
    { line: 12, token: "import(" },
  ]);
});

Deno.test("purity scanner ignores comments and literal text, not code beside them", () => {
  const sample = [
    "/** Uses no Date, no Math.random and no await. */", // 1
    "// setTimeout would be wrong here; see Deno.test", // 2
    "const url = 'http://x'; // Date in a comment after a string", // 3
    "/* multi-line\n   Promise\n*/ const d = Date;", // 4-6: Date on 6
    "const ok = updatedAt + DateLike;", // 7: word boundaries, not `Date`
    'throw new Error("entries await commit; retry at Date X");', // 8: prose in a string
    "const s = `${n} await ${{ a: 1 }.a} ${`in ${Date.now()}`} later`;", // 9: code in a template
    "const e = 'it\\'s async'; performance.now();", // 10: escaped quote, then code
  ].join("\n");
  assert.deepEqual(findViolations(sample), [
    { line: 6, token: "Date" },
    { line: 9, token: "Date" },
    { line: 10, token: "performance." },
  ]);
  const masked = maskSource(sample);
  assert.equal(masked.codeOnly.length, sample.length);
  assert.equal(masked.codeOnly.split("\n").length, sample.split("\n").length);
});
