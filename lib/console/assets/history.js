/**
 * The query history: the last HISTORY_MAX queries run, newest last, kept in
 * localStorage so it survives reloads. Navigation works like a shell's:
 * back from the draft walks to older entries, forward walks back to the
 * draft the person was typing, which is never lost.
 */

/** Entries kept; older ones fall off. */
export const HISTORY_MAX = 100;
/** Longest query kept (longer ones run but are not remembered). */
const ENTRY_CHARS_MAX = 100_000;
const KEY = "raftlite.console.history";

export class QueryHistory {
  /**
   * @param {Pick<Storage, "getItem" | "setItem">} storage
   */
  constructor(storage) {
    this.storage = storage;
    /** @type {string[]} */
    this.entries = load(storage);
    /** Position while navigating: entries.length means "the draft". */
    this.pos = this.entries.length;
    this.draft = "";
  }

  /**
   * Remembers a query that was run (not twice in a row) and ends navigation.
   * @param {string} query
   */
  add(query) {
    const q = query.trim();
    if (q !== "" && q.length <= ENTRY_CHARS_MAX && this.entries.at(-1) !== q) {
      this.entries.push(q);
      if (this.entries.length > HISTORY_MAX) {
        this.entries.splice(0, this.entries.length - HISTORY_MAX);
      }
      try {
        this.storage.setItem(KEY, JSON.stringify(this.entries));
      } catch {
        // storage full or disabled: the history lives on in memory
      }
    }
    this.pos = this.entries.length;
    this.draft = "";
  }

  /**
   * The older entry, or undefined at the oldest. `current` is the editor's
   * text, kept as the draft when navigation starts.
   * @param {string} current
   */
  back(current) {
    if (this.pos === this.entries.length) this.draft = current;
    if (this.pos === 0) return undefined;
    this.pos--;
    return this.entries[this.pos];
  }

  /** The newer entry, the draft after the newest, or undefined at the draft. */
  forward() {
    if (this.pos >= this.entries.length) return undefined;
    this.pos++;
    return this.pos === this.entries.length ? this.draft : this.entries[this.pos];
  }
}

function load(storage) {
  try {
    const saved = JSON.parse(storage.getItem(KEY) ?? "[]");
    return Array.isArray(saved)
      ? saved.filter((e) => typeof e === "string").slice(-HISTORY_MAX)
      : [];
  } catch {
    return [];
  }
}
