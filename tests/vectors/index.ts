// Data-only test vectors that live beside this file (see README.md for where each one came from).
import * as fs from "node:fs";
import * as path from "node:path";

/** Parses a vector file of this folder; the caller names the part of its shape that it reads. */
export function readVectors<T>(fileName: string): T {
  return JSON.parse(fs.readFileSync(path.join(__dirname, fileName), "utf8")) as T;
}
