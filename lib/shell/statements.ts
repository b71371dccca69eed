/**
 * Where one SQL statement ends: the state machine of SQLite's
 * `sqlite3_complete()` (src/complete.c) over the tokens of
 * lib/sql/tokenizer.ts. The shell keeps reading lines until the text is
 * complete, i.e. ends with a `;` that is outside strings, quoted names and
 * comments and not inside a `CREATE TRIGGER ... BEGIN ... END` body; then it
 * splits the text into statements at those same semicolons.
 *
 * Why the whole machine and not "last char is `;`": `INSERT ... 'a;'` and
 * trigger bodies full of `;` must not be cut, and an unterminated string or
 * block comment must keep the continuation prompt.
 *
 * @module
 */

import { tokenize } from "../sql/tokenizer.ts";

/** Token classes of complete.c (the column of {@link TRANS}). */
const Tk = {
  Semi: 0,
  Ws: 1,
  Other: 2,
  Explain: 3,
  Create: 4,
  Temp: 5,
  Trigger: 6,
  End: 7,
} as const;
type Tk = (typeof Tk)[keyof typeof Tk];

/** State after a statement boundary ("START" in complete.c). */
const START = 1;

/** complete.c's `trans[state][token]`; states 0 INVALID 1 START 2 NORMAL 3 EXPLAIN 4 CREATE 5 TRIGGER 6 SEMI 7 END. */
const TRANS: readonly (readonly number[])[] = [
  [1, 0, 2, 3, 4, 2, 2, 2],
  [1, 1, 2, 3, 4, 2, 2, 2],
  [1, 2, 2, 2, 2, 2, 2, 2],
  [1, 3, 3, 2, 4, 2, 2, 2],
  [1, 4, 2, 2, 2, 4, 5, 2],
  [6, 5, 5, 5, 5, 5, 5, 5],
  [6, 6, 5, 5, 5, 5, 5, 7],
  [1, 7, 5, 5, 5, 5, 5, 5],
];

const KEYWORDS: ReadonlyMap<string, Tk> = new Map([
  ["explain", Tk.Explain],
  ["create", Tk.Create],
  ["temp", Tk.Temp],
  ["temporary", Tk.Temp],
  ["trigger", Tk.Trigger],
  ["end", Tk.End],
]);

/** A statement boundary scan: the statements cut so far and whether the tail is open. */
interface Scan {
  /** Text of each complete statement, including its `;`, trimmed. */
  statements: string[];
  /** Text after the last boundary (trimmed); "" when everything was complete. */
  rest: string;
  /** True when `rest` is inside an unterminated string, quoted name or block comment. */
  open: boolean;
}

function scan(text: string): Scan {
  const statements: string[] = [];
  let state = 0;
  let from = 0;
  let open = false;
  for (const t of tokenize(text)) {
    const src = text.slice(t.start, t.end);
    let tk: Tk;
    if (t.kind === "ws" || t.kind === "comment") {
      if (src.startsWith("/*") && (src.length < 4 || !src.endsWith("*/"))) open = true;
      tk = Tk.Ws;
    } else if (t.kind === "punct" && src === ";") tk = Tk.Semi;
    else if (t.kind === "ident") tk = KEYWORDS.get(src.toLowerCase()) ?? Tk.Other;
    else {
      if (t.kind === "illegal" && t.end === text.length && /^(['"`[]|[xX]')/.test(src)) {
        open = true;
      }
      tk = Tk.Other;
    }
    state = TRANS[state]![tk]!;
    if (tk === Tk.Semi && state === START) {
      const stmt = text.slice(from, t.end).trim();
      if (stmt !== ";" && !onlyTrivia(stmt)) statements.push(stmt);
      from = t.end;
    }
  }
  const rest = text.slice(from).trim();
  return { statements, rest: onlyTrivia(rest) ? "" : rest, open };
}

/** True when `text` has nothing but whitespace, comments and semicolons. */
function onlyTrivia(text: string): boolean {
  return tokenize(text).every((t) =>
    t.kind === "ws" || t.kind === "comment" || text.slice(t.start, t.end) === ";"
  );
}

/**
 * True when `text` holds one or more whole statements and nothing after the
 * last `;` but whitespace or comments (SQLite's `sqlite3_complete`), or is
 * blank.
 */
export function isComplete(text: string): boolean {
  const s = scan(text);
  return !s.open && s.rest === "";
}

/**
 * Splits `text` into statements at the semicolons that end them; empty
 * statements and comment-only pieces are dropped. A tail without its `;`
 * comes last as it is (callers check {@link isComplete} first when they
 * want to wait for more).
 */
export function splitStatements(text: string): string[] {
  const s = scan(text);
  return s.rest === "" ? s.statements : [...s.statements, s.rest];
}

/**
 * Feeds lines one at a time (a file for `.read`, lines typed at the
 * prompt) and hands out statements as soon as they are complete, so a big
 * file is never held whole in memory. Bounded: a single statement larger
 * than `maxBytes` is an error rather than unbounded growth.
 */
export class StatementReader {
  #buffer = "";

  constructor(readonly maxChars = 64 * 1024 * 1024) {}

  /** Adds a line; returns the statements it completed (maybe none). */
  push(line: string): string[] {
    const wasEmpty = this.#buffer === "";
    this.#buffer = wasEmpty ? line : `${this.#buffer}\n${line}`;
    if (this.#buffer.length > this.maxChars) {
      this.#buffer = "";
      throw new RangeError(
        `a statement is longer than ${this.maxChars} characters; is a ';' or a quote missing?`,
      );
    }
    // Only a ';' or the end of a block comment can complete the text: skip the rescan otherwise.
    if (!wasEmpty && !line.includes(";") && !line.includes("*/")) return [];
    if (!isComplete(this.#buffer)) return [];
    const out = splitStatements(this.#buffer);
    this.#buffer = "";
    return out;
  }

  /** True when a statement has begun and is not complete. */
  get pending(): boolean {
    return this.#buffer.trim() !== "";
  }

  /** The incomplete text so far (and forgets it). */
  take(): string {
    const b = this.#buffer;
    this.#buffer = "";
    return b;
  }
}
