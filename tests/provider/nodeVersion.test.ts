// The Node.js version gate: one sentence naming the required version, the found one and the fix, before any
// dependency loads; package.json `engines` says the same minimum as the gate.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { Context } from "mocha";
import {
  MINIMUM_NODE,
  isSupportedNode,
  requireSupportedNode,
  unsupportedNodeMessage,
} from "../../plugin/nodeVersion";
import { requireBinary } from "../realBinaries";

const ROOT = path.resolve(__dirname, "../..");

describe("Node.js version gate of the library and the plugin", () => {
  it("the minimum is what the dependencies declare (undici under @kubernetes/client-node), and engines says it", () => {
    const engines = (
      JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { engines: { node: string } }
    ).engines;
    assert.equal(engines.node, `>=${MINIMUM_NODE}`);
    const undici = JSON.parse(readFileSync(path.join(ROOT, "node_modules/undici/package.json"), "utf8")) as {
      engines: { node: string };
    };
    assert.equal(undici.engines.node, `>=${MINIMUM_NODE}`);
  });

  it("compares versions numerically", () => {
    for (const ok of ["22.19.0", "v22.19.1", "22.23.3", "23.0.0", "24.1.0", "100.0.0"])
      assert.equal(isSupportedNode(ok), true, ok);
    for (const old of ["22.18.9", "22.9.0", "20.20.2", "v18.20.0", "21.99.99"])
      assert.equal(isSupportedNode(old), false, old);
  });

  it("fails with one sentence: required version, found version, how to fix", () => {
    assert.doesNotThrow(() => requireSupportedNode("22.19.0"));
    assert.throws(
      () => requireSupportedNode("20.20.2"),
      (e: Error) => e.message === unsupportedNodeMessage("20.20.2"),
    );
    const message = unsupportedNodeMessage("v20.20.2");
    assert.match(
      message,
      /needs Node\.js 22\.19\.0 or newer, but this is Node\.js 20\.20\.2; install Node\.js 22\.19\.0\+/,
    );
    // One sentence: no sentence break inside, one full stop at the end.
    assert.doesNotMatch(message.slice(0, -1), /[.!?]\s/);
    assert.ok(message.endsWith("."));
  });

  it("the real Node.js 20 of this machine loading the package entry (index.ts) stops with that sentence", async function (this: Context) {
    this.timeout(300_000);
    const node20 = await requireBinary(this, "system Node.js 20", async () => {
      if (!existsSync("/usr/bin/node")) throw new Error("/usr/bin/node is not installed");
      return "/usr/bin/node";
    });
    const { code, stderr, version } = await new Promise<{
      code: number | null;
      stderr: string;
      version: string;
    }>((resolve) => {
      execFile(
        node20,
        [
          "-r",
          "ts-node/register/transpile-only",
          "-e",
          "console.error('found ' + process.versions.node); require('./index.ts')",
        ],
        { cwd: ROOT, timeout: 50_000 },
        (err, _out, stderr) =>
          resolve({
            code: err ? ((err as { code?: number }).code ?? 1) : 0,
            stderr,
            version: /found (\S+)/.exec(stderr)?.[1] ?? "",
          }),
      );
    });
    if (isSupportedNode(version)) this.skip();
    assert.notEqual(code, 0);
    assert.ok(stderr.includes(unsupportedNodeMessage(version)), stderr);
  });
});
