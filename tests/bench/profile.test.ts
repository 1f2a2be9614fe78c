// The bench's CPU-profile summary against a real profile: Node.js itself (`--cpu-prof`) profiles a script that
// spends nearly all of its time in one named function, and the summary must put that function first.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { formatProfileSummary, summarizeCpuProfile } from "../../bench/profile";
import { tempDir } from "../tempDir";

describe("bench: CPU profile summary", function () {
  this.timeout(60_000);

  it("names the function a real --cpu-prof profile spent its time in, with its share", () => {
    const dir = tempDir("cpu-prof-");
    const script = path.join(dir, "spin.js");
    // Busy for 400 ms of this process's own CPU time, however slow the machine is.
    fs.writeFileSync(
      script,
      `function spinHere() { const end = process.cpuUsage().user + 400000; let x = 0;
         while (process.cpuUsage().user < end) for (let i = 0; i < 1e6; i++) x += Math.sqrt(x + i); return x; }
       spinHere();\n`,
    );
    const run = spawnSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${dir}`, script], {
      encoding: "utf8",
    });
    assert.equal(run.status, 0, run.stderr);
    const file = fs.readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    assert.ok(file, "Node.js wrote no .cpuprofile");
    const summary = summarizeCpuProfile(JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")), 5);
    const top = summary.top[0];
    assert.ok(top, "no function in the summary");
    assert.match(top.where, /^spinHere \(spin\.js:1:\d+\)$/);
    assert.ok(top.share > 0.5, `spinHere has only ${(top.share * 100).toFixed(1)}% of the samples`);
    assert.ok(summary.sampledMs >= top.selfMs);
    assert.match(formatProfileSummary(summary).join("\n"), /% {2}spinHere \(spin\.js:1:\d+\)/);
  });

  it("refuses a file that is not a V8 CPU profile, naming the missing field", () => {
    assert.throws(() => summarizeCpuProfile({ nodes: [] }), /samples/);
  });
});
