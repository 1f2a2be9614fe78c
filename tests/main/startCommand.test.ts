// `npm start` as a user runs it, on a fleet whose ground truth is known in advance: the main job applies the
// component's objects, the simulator runs the real dispatcher, and the exported outputs must say exactly
// which nodes got Kata, which were skipped and why one failed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { FleetFile } from "../../sim";
import { tempDir } from "../tempDir";

const ROOT = path.resolve(__dirname, "../..");

const fleet: FleetFile = {
  nodes: [
    {
      name: "cp-1",
      labels: { "node-role.kubernetes.io/control-plane": "" },
      taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
    },
    { name: "w-1" },
    { name: "w-2" },
    { name: "w-3.example.com" },
    { name: "gpu-1", taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] },
    {
      name: "w-broken",
      outcome: {
        kind: "fail",
        failure: { container: "host-check", exitCode: 1, message: "no usable virtualization backend" },
      },
    },
    { name: "w-flaky", outcome: { kind: "failThenSucceed", failures: 1 } },
  ],
};

interface Outputs {
  mode: string;
  kataNodes: string[];
  summary: { total: number; succeeded: number; failed: number; skipped: number };
  nodeResults: { node: string; outcome: string; attempts: number; message?: string; reason?: string }[];
}

describe("npm start (the main job on a simulated fleet)", function () {
  this.timeout(180_000);
  let outputs: Outputs;
  let exitCode: number | null;
  let stderr = "";
  const dir = tempDir("kata-start-");

  before(async () => {
    const fleetFile = path.join(dir, "fleet.json");
    fs.writeFileSync(fleetFile, JSON.stringify(fleet));
    const args = [
      "--transpile-only",
      path.join(ROOT, "main/cli.ts"),
      "--fleet",
      fleetFile,
      "--parallelism",
      "2",
      "--time-scale",
      "2000",
      "--json",
      "--profile",
      path.join(dir, "profile.svg"),
    ];
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(path.join(ROOT, "node_modules/.bin/ts-node"), args, { cwd: dir });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("exit", (code) => {
        exitCode = code;
        resolve(out);
      });
    });
    outputs = JSON.parse(stdout) as Outputs;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("exits 1 because one node failed, naming it and why", () => {
    assert.equal(exitCode, 1, stderr);
    assert.match(stderr, /w-broken/);
  });

  it("exports Kata on exactly the workers that succeeded, the flaky one after a retry", () => {
    assert.equal(outputs.mode, "job");
    assert.deepEqual(outputs.kataNodes, ["w-1", "w-2", "w-3.example.com", "w-flaky"]);
    const flaky = outputs.nodeResults.find((r) => r.node === "w-flaky");
    assert.equal(flaky?.attempts, 2);
  });

  it("reports the failed node with its container's exit and message, and the tainted node as skipped", () => {
    const broken = outputs.nodeResults.find((r) => r.node === "w-broken");
    assert.equal(broken?.outcome, "failed");
    assert.match(broken?.message ?? "", /host-check exited 1: no usable virtualization backend/);
    const gpu = outputs.nodeResults.find((r) => r.node === "gpu-1");
    assert.equal(gpu?.outcome, "skipped");
    assert.match(gpu?.message ?? gpu?.reason ?? "", /dedicated=gpu:NoSchedule/);
    assert.equal(
      outputs.nodeResults.find((r) => r.node === "cp-1"),
      undefined,
      "the control plane is not selected",
    );
    assert.deepEqual(outputs.summary, { ...outputs.summary, total: 6, succeeded: 4, failed: 1, skipped: 1 });
  });

  it("draws the rollout profile", () => {
    const svg = fs.readFileSync(path.join(dir, "profile.svg"), "utf8");
    assert.match(svg, /^<svg /);
    assert.match(svg, /parallelism 2/);
    assert.match(svg, /<polyline /);
  });
});
