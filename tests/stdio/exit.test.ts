// Every command ends through stdio/exit.ts: all of its output reaches a reader that is slower than the program,
// and the exit code is the program's. The reader below takes nothing until the program has written everything
// and asked to exit, the worst case for a pipe (it holds 64 KiB).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
const BYTES = 5 * 1024 * 1024;

interface Ended {
  stdout: Buffer;
  code: number | null;
}

/** Runs the test program with stdout paused until it reports on stderr that it wrote everything. */
function runWithLateReader(how: "drain" | "exit" | "usage"): Promise<Ended & { stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      path.join(ROOT, "node_modules/.bin/ts-node"),
      ["--transpile-only", path.join(__dirname, "writeAndExit.ts"), how, String(BYTES)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    const chunks: Buffer[] = [];
    child.stdout.pause();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("written\n") && !child.stdout.readableFlowing)
        child.stdout.on("data", (c: Buffer) => chunks.push(c)).resume();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout: Buffer.concat(chunks), code, stderr }));
  });
}

describe("stdio/exit: output that drains before the exit", function () {
  this.timeout(300_000);

  it("delivers 5 MiB of JSON to a reader that starts reading only after the program wants to exit", async () => {
    const { stdout, code } = await runWithLateReader("drain");
    assert.equal(code, 3, "the program's own exit code");
    const doc = JSON.parse(stdout.toString("utf8")) as { items: { i: number }[] };
    assert.equal(doc.items.length, Math.ceil(BYTES / 100));
    assert.ok(stdout.length > BYTES);
  });

  it("a UsageError exits 2 with `<command>: <message>`, after the output written before it", async () => {
    const { stdout, code, stderr } = await runWithLateReader("usage");
    assert.equal(code, 2);
    assert.match(stderr, /^written\nwriteAndExit: --size: too big\n$/);
    assert.ok(stdout.length > BYTES);
  });

  it("(control) a bare process.exit loses what the pipe could not hold, so the test above can fail", async () => {
    const { stdout, code } = await runWithLateReader("exit");
    assert.equal(code, 3);
    assert.ok(stdout.length < BYTES, `only part of the output arrives (${stdout.length} bytes)`);
    assert.throws(() => JSON.parse(stdout.toString("utf8")));
  });
});
