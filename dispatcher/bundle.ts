// The dispatcher as one file that runs on a stock Node.js image (`node <mountDir>/<entry> <flags>`), delivered in a
// ConfigMap. esbuild is loaded only when a bundle is built (program time), never by the dispatcher itself.
// Run as a script (`npm run bundle`) it writes dist/dispatcher/ and prints the sizes.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";

export interface DispatcherBundle {
  /** ConfigMap data keys -> text. */
  files: Record<string, string>;
  /** File name to run with node. */
  entry: string;
  /** SHA-256 over the files (sorted by name), hex. */
  sha256: string;
  /** Total bytes of the files' text. */
  bytes: number;
}

export interface BundleSizes {
  /** The minified single-file program. */
  rawBytes: number;
  /** gzip -9 of it. */
  gzipBytes: number;
  /** What goes into the ConfigMap (after base64 when compressed). */
  configMapBytes: number;
  compressed: boolean;
}

/** A ConfigMap holds at most 1 MiB of data; keep a margin for the other keys (the Job templates). */
export const CONFIGMAP_BUDGET = 900 * 1024;
export const ENTRY = "dispatcher.js";
export const PAYLOAD = "dispatcher.js.gz.b64";

/** Unpacks the gzip+base64 payload next to it and runs it as the main module of this process. */
const BOOTSTRAP = `"use strict";
// kata-deploy dispatcher bootstrap: the program is ${PAYLOAD} (gzip, base64) beside this file.
const fs = require("node:fs"), path = require("node:path"), zlib = require("node:zlib"), Module = require("node:module");
const file = path.join(__dirname, ${JSON.stringify(PAYLOAD)});
const code = zlib.gunzipSync(Buffer.from(fs.readFileSync(file, "utf8"), "base64")).toString("utf8");
const m = new Module(file, null);
m.filename = file;
m.paths = Module._nodeModulePaths(__dirname);
m._compile(code, file);
`;

/** esbuild the CLI into one minified CommonJS file (no node_modules needed at run time). */
export async function buildProgram(): Promise<string> {
  // Required lazily: esbuild is a build-time tool only.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require("esbuild") as typeof import("esbuild");
  const result = await esbuild.build({
    stdin: {
      contents: 'require("./cli").runCli();',
      resolveDir: __dirname,
      sourcefile: "dispatcher-entry.js",
      loader: "js",
    },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    minify: true,
    write: false,
    legalComments: "none",
    logLevel: "silent",
    // Optional native/optional dependencies of transitive packages that are never used by the dispatcher.
    external: ["bufferutil", "utf-8-validate", "canvas"],
  });
  return result.outputFiles[0].text;
}

function sha256Of(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort())
    hash.update(name).update("\0").update(files[name]).update("\0");
  return hash.digest("hex");
}

/** Package a built program for a ConfigMap: as-is when it fits, else gzip+base64 with a bootstrap. */
export function packageProgram(
  program: string,
  budget = CONFIGMAP_BUDGET,
): { bundle: DispatcherBundle; sizes: BundleSizes } {
  const rawBytes = Buffer.byteLength(program);
  const gz = gzipSync(program, { level: 9 });
  let files: Record<string, string>;
  if (rawBytes <= budget) files = { [ENTRY]: program };
  else files = { [ENTRY]: BOOTSTRAP, [PAYLOAD]: gz.toString("base64") };
  const bytes = Object.values(files).reduce((n, text) => n + Buffer.byteLength(text), 0);
  if (bytes > budget) {
    throw new Error(
      `dispatcher bundle is ${bytes} bytes after compression, over the ConfigMap budget of ${budget} bytes`,
    );
  }
  return {
    bundle: { files, entry: ENTRY, sha256: sha256Of(files), bytes },
    sizes: { rawBytes, gzipBytes: gz.length, configMapBytes: bytes, compressed: rawBytes > budget },
  };
}

let cached: Promise<{ bundle: DispatcherBundle; sizes: BundleSizes }> | undefined;

/** Build once per process (program time); later calls share the result. */
export function buildDispatcherBundleWithSizes(): Promise<{ bundle: DispatcherBundle; sizes: BundleSizes }> {
  cached ??= buildProgram().then((program) => packageProgram(program));
  cached.catch(() => (cached = undefined));
  return cached;
}

export async function buildDispatcherBundle(): Promise<DispatcherBundle> {
  return (await buildDispatcherBundleWithSizes()).bundle;
}

/** Write the bundle's files into `dir` (like the ConfigMap mount); returns the entry's path. */
export function writeBundle(bundle: DispatcherBundle, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(bundle.files)) writeFileSync(path.join(dir, name), text);
  return path.join(dir, bundle.entry);
}

if (require.main === module) {
  const out = path.resolve(__dirname, "..", "dist", "dispatcher");
  buildProgram()
    .then((program) => {
      const { bundle, sizes } = packageProgram(program);
      mkdirSync(out, { recursive: true });
      writeFileSync(path.join(out, "dispatcher.min.js"), program);
      const entry = writeBundle(bundle, path.join(out, "configmap"));
      const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
      process.stdout.write(
        [
          `program:   ${path.join(out, "dispatcher.min.js")} ${kib(sizes.rawBytes)} raw, ${kib(sizes.gzipBytes)} gzip`,
          `configmap: ${path.dirname(entry)} (${Object.keys(bundle.files).join(", ")}) ${kib(sizes.configMapBytes)}${sizes.compressed ? " (gzip+base64 with bootstrap)" : ""}`,
          `run:       node ${entry} --help`,
          `sha256:    ${bundle.sha256}`,
          "",
        ].join("\n"),
      );
    })
    .catch((err) => {
      process.stderr.write(`bundle failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    });
}
