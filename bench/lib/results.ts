/**
 * Writes a benchmark's figures into bench/RESULTS.md, one `## <title>`
 * section per benchmark, replaced in place by its latest run and stamped
 * with the date and the machine it ran on (bench/README.md convention).
 *
 * @module
 */

const RESULTS = new URL("../RESULTS.md", import.meta.url);

const HEADER = "# Benchmark results\n\n" +
  "Written by `deno task bench`: each section is replaced by the latest run of its benchmark.\n";

/** One line describing this machine: cores, CPU model, memory, OS and Deno version. */
export function machineDescription(): string {
  let cpu = "unknown CPU";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux.
  }
  const cores = navigator.hardwareConcurrency;
  const memGiB = Math.round(Deno.systemMemoryInfo().total / 2 ** 30);
  return `${cores} cores (${cpu}), ${memGiB} GiB RAM, ${Deno.build.os}/${Deno.build.arch}, ` +
    `Deno ${Deno.version.deno}`;
}

/** Replaces (or appends) the section `## title` of `doc` with `section` (which starts with it). */
export function replaceSection(doc: string, title: string, section: string): string {
  const heading = `## ${title}\n`;
  let start = doc.startsWith(heading) ? 0 : doc.indexOf(`\n${heading}`);
  if (start < 0) return doc.trimEnd() + "\n\n" + section;
  if (start > 0) start += 1;
  const next = doc.indexOf("\n## ", start + heading.length);
  if (next < 0) return doc.slice(0, start) + section;
  return doc.slice(0, start) + section + "\n" + doc.slice(next + 1);
}

/**
 * Records `lines` (preformatted text, e.g. a table) as the section `title`
 * of bench/RESULTS.md, after the date, the machine description and `notes`.
 * Everything goes in one code block, which `deno fmt` leaves alone.
 */
export async function recordResults(
  title: string,
  lines: readonly string[],
  notes: readonly string[] = [],
): Promise<void> {
  let doc = HEADER;
  try {
    doc = await Deno.readTextFile(RESULTS);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const date = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const section = [
    `## ${title}`,
    "",
    "```text",
    `${date}, ${machineDescription()}`,
    ...notes,
    "",
    ...lines,
    "```",
    "",
  ].join("\n");
  await Deno.writeTextFile(RESULTS, replaceSection(doc, title, section));
}

/** Aligns table rows: the first column left-aligned, the others right-aligned, two spaces apart. */
export function alignTable(rows: readonly (readonly string[])[]): string[] {
  const widths = (rows[0] ?? []).map((_, i) =>
    Math.max(...rows.map((cells) => cells[i]?.length ?? 0))
  );
  return rows.map((cells) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ").trimEnd()
  );
}
