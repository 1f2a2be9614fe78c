// Reading the component's args from a file (YAML or JSON; YAML is a superset of JSON), for `npm run plan` and
// `npm start`. Bounded: args are a few kilobytes, so a file over the limit is a mistake, and it is refused before
// it is parsed. The yaml library's own duplicate-key check compares every key of a map with every earlier one
// (quadratic: a 1 MB map took a minute); it is turned off and replaced by one pass with a Set per map.
import * as fs from "node:fs";
import { isScalar, LineCounter, parseDocument, visit } from "yaml";

/** The largest args file read: far above any real component args (the whole chart values are ~20 KB). */
export const MAX_ARGS_FILE_BYTES = 1024 * 1024;

export class ArgsFileError extends Error {}

/** The file's first `limit + 1` bytes at most: a device or FIFO that never ends is bounded too. */
function readBounded(file: string, limit: number): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (;;) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > limit) break;
    }
    return buffer.subarray(0, length);
  } finally {
    fs.closeSync(fd);
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
}

/** Parses args text; every problem names the line. An empty document is no args. */
export function parseArgsText(text: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true, lineCounter: lines });
  if (doc.errors.length > 0) throw new ArgsFileError(doc.errors.map((e) => e.message).join("\n"));
  const duplicates: string[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key)) {
          const at = pair.key.range ? ` at line ${lines.linePos(pair.key.range[0]).line}` : "";
          duplicates.push(`duplicate key "${key}"${at}: give each key once`);
        }
        seen.add(key);
      }
    },
  });
  if (duplicates.length > 0) throw new ArgsFileError(duplicates.join("\n"));
  // maxAliasCount bounds alias expansion ("billion laughs"); the validation that follows checks the shape.
  return (doc.toJS({ maxAliasCount: 100 }) as unknown) ?? {};
}

/** Reads and parses an args file; errors name the file and the limit or the line. */
export function readArgsFile(file: string): unknown {
  let bytes: Buffer;
  try {
    bytes = readBounded(file, MAX_ARGS_FILE_BYTES);
  } catch (e) {
    throw new ArgsFileError(`cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (bytes.length > MAX_ARGS_FILE_BYTES)
    throw new ArgsFileError(
      `larger than ${mib(MAX_ARGS_FILE_BYTES)}, the limit for an args file (component args are a few KB)`,
    );
  return parseArgsText(bytes.toString("utf8"));
}
