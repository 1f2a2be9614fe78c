// `npm start` as a user runs it, on a fleet whose ground truth is known in advance: the main job applies the
// component's objects, the simulator runs the real dispatcher, and the exported outputs must say exactly
// which nodes got Kata, which were skipped and why one failed.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { MAX_ARGS_FILE_BYTES } from "../../components/argsFile";
import { main, OUTPUT_FILES } from "../../main/cli";
import { nodeOutcome, type NodeOutcomes } from "../../rollout/outcomes";
import type { FleetFile } from "../../sim";
import { UsageError } from "../../stdio/exit";
import { systemKubectl } from "../realBinaries";
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
  nodeOutcomes: NodeOutcomes;
}

/** `npm start` as a process (ts-node on main/cli.ts, as the npm script runs it). */
function start(args: string[], cwd: string): ChildProcessWithoutNullStreams {
  return spawn(
    path.join(ROOT, "node_modules/.bin/ts-node"),
    ["--transpile-only", path.join(ROOT, "main/cli.ts"), ...args],
    {
      cwd,
    },
  );
}

function ended(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve(code));
  });
}

/** Resolves with the stream's text so far once `pattern` appears in it. */
function waitFor(
  stream: NodeJS.ReadableStream,
  text: { value: string },
  pattern: RegExp,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = text.value.match(pattern);
      if (m) {
        stream.off("data", check);
        stream.off("end", fail);
        resolve(m);
      }
    };
    const fail = () => reject(new Error(`the stream ended without ${pattern}:\n${text.value}`));
    stream.on("data", check);
    stream.on("end", fail);
    check();
  });
}

function collect(stream: NodeJS.ReadableStream): { value: string } {
  const text = { value: "" };
  stream.on("data", (d: Buffer) => (text.value += d.toString()));
  return text;
}

describe("npm start (the main job on a simulated fleet)", function () {
  this.timeout(300_000);
  let outputs: Outputs;
  let exitCode: number | null;
  let stdoutText = "";
  let stderr = "";
  const dir = tempDir("kata-start-");
  const out = path.join(dir, "results");

  before(async () => {
    const fleetFile = path.join(dir, "fleet.json");
    fs.writeFileSync(fleetFile, JSON.stringify(fleet));
    const child = start(
      ["--fleet", fleetFile, "--parallelism", "2", "--time-scale", "2000", "--json", "--out", out],
      dir,
    );
    const stdout = collect(child.stdout);
    const err = collect(child.stderr);
    exitCode = await ended(child);
    stderr = err.value;
    stdoutText = stdout.value;
    outputs = JSON.parse(stdoutText) as Outputs;
  });

  it("exits 1 because one node failed, naming it and why", () => {
    assert.equal(exitCode, 1, stderr);
    assert.match(stderr, /w-broken/);
  });

  it("exports Kata on exactly the workers that succeeded, the flaky one after a retry", () => {
    assert.equal(outputs.mode, "job");
    assert.deepEqual(outputs.kataNodes, ["w-1", "w-2", "w-3.example.com", "w-flaky"]);
    assert.equal(nodeOutcome(outputs.nodeOutcomes, "w-flaky")?.outcome, "succeeded");
    // Attempts are not among the stack outputs (rollout/outcomes.ts); the per-node table has them.
    const table = fs.readFileSync(path.join(out, OUTPUT_FILES.table), "utf8");
    assert.match(table, /^w-flaky +succeeded +2 /m);
  });

  it("reports the failed node with its container's exit and message, and the tainted node as skipped", () => {
    const broken = nodeOutcome(outputs.nodeOutcomes, "w-broken");
    assert.equal(broken?.outcome, "failed");
    assert.match(broken?.message ?? "", /host-check exited 1: no usable virtualization backend/);
    const gpu = nodeOutcome(outputs.nodeOutcomes, "gpu-1");
    assert.equal(gpu?.outcome, "skipped");
    assert.match(gpu?.message ?? gpu?.reason ?? "", /dedicated=gpu:NoSchedule/);
    assert.equal(nodeOutcome(outputs.nodeOutcomes, "cp-1"), undefined, "the control plane is not selected");
    assert.deepEqual(outputs.summary, { ...outputs.summary, total: 6, succeeded: 4, failed: 1, skipped: 1 });
  });

  it("--json: stdout is exactly the stack outputs; the same JSON, the table and the picture go to --out", () => {
    assert.equal(stdoutText, `${JSON.stringify(outputs, null, 2)}\n`);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, OUTPUT_FILES.outputs), "utf8")), outputs);
    const table = fs.readFileSync(path.join(out, OUTPUT_FILES.table), "utf8").split("\n");
    assert.match(table[0], /^NODE +OUTCOME +ATTEMPTS +TOOK +REASON$/);
    assert.match(table[1], /^w-broken +failed/);
    const svg = fs.readFileSync(path.join(out, OUTPUT_FILES.profile), "utf8");
    assert.match(svg, /^<svg /);
    assert.match(svg, /parallelism 2/);
    assert.match(svg, /<polyline /);
    for (const name of Object.values(OUTPUT_FILES)) assert.ok(stderr.includes(path.join(out, name)), name);
  });
});

describe("npm start: the summary a person reads, --args, optional outputs that fail, --keep", function () {
  this.timeout(300_000);
  const dir = tempDir("kata-start-human-");
  let stdout: { value: string };
  let stderr: { value: string };
  let exitCode: number | null;
  let jobs: k8s.V1Job[] = [];
  let kubectlJobs: string | undefined;
  let kubectlSkip: string | undefined;

  before(async () => {
    const fleetFile = path.join(dir, "fleet.json");
    fs.writeFileSync(fleetFile, JSON.stringify(fleet));
    const argsFile = path.join(dir, "args.yaml");
    fs.writeFileSync(
      argsFile,
      "job:\n  ttlSecondsAfterFinished: 86400\n  backoffLimit: 2\nnamespace: kata-demo\n",
    );
    // --out below a regular file: none of the three files can be written.
    fs.writeFileSync(path.join(dir, "blocker"), "");
    const child = start(
      [
        "--args",
        argsFile,
        "--fleet",
        fleetFile,
        "--parallelism",
        "2",
        "--time-scale",
        "2000",
        "--out",
        path.join(dir, "blocker", "results"),
        "--keep",
      ],
      dir,
    );
    stdout = collect(child.stdout);
    stderr = collect(child.stderr);
    const code = ended(child);
    const [, kubeconfig, namespace] = await waitFor(
      child.stdout,
      stdout,
      /kubectl --kubeconfig (\S+) get jobs -n (\S+) -w/,
    );
    // The cluster is still there: read the per-node Jobs through the printed kubeconfig.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    jobs = (await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace })).items;
    const kubectl = await systemKubectl().catch((e: Error) => e);
    if (kubectl instanceof Error) kubectlSkip = `no kubectl: ${kubectl.message}`;
    else if (!kc.getCurrentCluster()?.server.startsWith("https:"))
      // kubectl sends a bearer token over https only; the simulator serves https once it has its own CA.
      kubectlSkip = "the simulator serves plain http, and kubectl sends no bearer token over http";
    else
      kubectlJobs = spawnSync(
        kubectl,
        ["--kubeconfig", kubeconfig, "get", "jobs", "-n", namespace, "-o", "name"],
        {
          encoding: "utf8",
        },
      ).stdout;
    child.kill("SIGINT");
    exitCode = await code;
  });

  it("prints a short summary: counts, every node that did not succeed with its reason, the slowest nodes", () => {
    const text = stdout.value;
    assert.match(text, /kata-deploy job mode, release kata-demo\/kata-deploy, chart 4\.0\.0, run \S+/);
    assert.match(text, /4 of 6 nodes succeeded, 1 failed, 1 skipped in \d+s/);
    assert.match(
      text,
      /Failed \(1\):\n {2}w-broken +3 attempts +BackoffLimitExceeded: .*host-check exited 1: no usable virtualization backend/,
    );
    assert.match(text, /Skipped \(1\):\n {2}gpu-1 +Tainted: .*dedicated=gpu:NoSchedule/);
    assert.match(text, /Slowest nodes .*:\n {2}w-/);
    assert.doesNotMatch(text, /RuntimeClass|NODE +OUTCOME/, "no unserved kinds, no per-node table");
    assert.ok(text.split("\n").length < 40, text);
  });

  it("a result file that cannot be written is a warning; the exit code is the rollout's (1: a node failed)", () => {
    assert.equal(exitCode, 1, stderr.value);
    assert.equal(
      stderr.value.match(/warning: cannot write .*blocker\/results\/\S+: ENOTDIR/g)?.length,
      3,
      stderr.value,
    );
    assert.doesNotMatch(stdout.value, /Full results/);
  });

  it("--args reaches the per-node Jobs (job.ttlSecondsAfterFinished, job.backoffLimit), read live with --keep", () => {
    const perNode = jobs.filter((j) => j.metadata?.labels?.["kata-deploy-job-dispatcher/node"]);
    assert.equal(perNode.length, 5, "one per selected, untainted worker");
    for (const j of perNode) {
      assert.equal(j.spec?.ttlSecondsAfterFinished, 86400);
      assert.equal(j.spec?.backoffLimit, 2);
    }
  });

  it("the printed kubectl line works: the real kubectl lists the same Jobs while the cluster is kept", function () {
    if (kubectlSkip) {
      process.stderr.write(`SKIPPED (${this.test?.fullTitle()}): ${kubectlSkip}\n`);
      this.skip();
    }
    const listed = (kubectlJobs ?? "").split("\n").filter((l) => l.startsWith("job.batch/"));
    assert.equal(listed.length, jobs.length);
  });
});

describe("npm start: drains a large --json to a slow pipe", function () {
  this.timeout(300_000);

  it("delivers the whole JSON of 800 nodes (> 64 KiB) to a reader that starts only after the results", async () => {
    const dir = tempDir("kata-start-pipe-");
    const child = start(["--json", "--nodes", "800", "--time-scale", "2000", "--out", dir], dir);
    child.stdout.pause();
    const stderr = collect(child.stderr);
    const code = ended(child);
    // The results are on stdout before the files are written, and "Full results" follows the files.
    await waitFor(child.stderr, stderr, /Full results:/);
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c)).resume();
    assert.equal(await code, 0, stderr.value);
    const text = Buffer.concat(chunks).toString("utf8");
    assert.ok(text.length > 65_536, `${text.length} bytes`);
    const outputs = JSON.parse(text) as Outputs;
    assert.equal(Object.keys(outputs.nodeOutcomes.nodes).length, 797, "800 nodes less 3 control-plane nodes");
  });
});

describe("npm start: options and input files (exit 2 through stdio/exit's UsageError)", function () {
  this.timeout(300_000);
  const dir = tempDir("kata-start-usage-");
  const file = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const stderrWrite = process.stderr.write;
  let stderr = "";
  beforeEach(() => {
    stderr = "";
    process.stderr.write = (t: string) => ((stderr += t), true);
  });
  afterEach(() => {
    process.stderr.write = stderrWrite;
  });

  const usage = (pattern: RegExp) => (e: Error) => {
    const message =
      e instanceof UsageError
        ? e.message
        : (e as { code?: string }).code?.startsWith("commander.")
          ? stderr
          : "";
    assert.match(message, pattern, String(e));
    return true;
  };

  it("bounds --nodes and refuses numbers that are not", async () => {
    await assert.rejects(
      main(["--nodes", "100000000"]),
      usage(/'--nodes <n>' argument '100000000' is invalid\. expected a whole number from 1 to 100,000/),
    );
    await assert.rejects(main(["--nodes", ""]), usage(/--nodes/));
    await assert.rejects(main(["--fail-rate", "2"]), usage(/from 0 to 1/));
    await assert.rejects(main(["--bogus"]), usage(/unknown option '--bogus'/));
  });

  it("--args: unreadable, too large, not a map, or set twice with an option", async () => {
    await assert.rejects(
      main(["--args", path.join(dir, "nope.yaml")]),
      usage(/--args .*nope\.yaml: cannot read it \(ENOENT\)/),
    );
    const big = file("big.yaml", `values: {k: "${"x".repeat(MAX_ARGS_FILE_BYTES)}"}\n`);
    await assert.rejects(main(["--args", big]), usage(/larger than 1 MiB, the limit for an args file/));
    await assert.rejects(
      main(["--args", file("list.yaml", "- a\n")]),
      usage(/expected a map of the component's args/),
    );
    const twice = file("twice.yaml", "job: {parallelism: 3}\n");
    await assert.rejects(
      main(["--args", twice, "--parallelism", "5"]),
      usage(/--parallelism and job\.parallelism in .*twice\.yaml: give one of them/),
    );
  });

  it("invalid component args: every error with its path, exit code 2", async () => {
    const bad = file(
      "bad.yaml",
      "image: {reference: 'quay.io/kata@sha256:zzz'}\njob: {ttlSecondsAfterFinished: -1}\n",
    );
    assert.equal(await main(["--args", bad]), 2);
    assert.match(stderr, /error: image\.reference: .*sha256 takes exactly 64 lowercase hex digits/);
    assert.match(stderr, /error: job\.ttlSecondsAfterFinished: /);
  });

  it("a bad --fleet file, simulator options with a kubeconfig, --keep on a real cluster", async () => {
    await assert.rejects(
      main(["--fleet", file("fleet.json", "{")]),
      usage(/--fleet: fleet file .* is not valid JSON/),
    );
    const kubeconfig = file(
      "kubeconfig",
      "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n",
    );
    await assert.rejects(
      main(["--kubeconfig", kubeconfig, "--nodes", "5", "--yes"]),
      usage(/--nodes: for the simulated cluster only/),
    );
    await assert.rejects(
      main(["--kubeconfig", kubeconfig, "--keep"]),
      usage(/--keep: for the simulated cluster only/),
    );
  });

  it("--destroy: only with a kubeconfig, no simulator options, no --out; exit 3 when the cluster cannot be reached", async () => {
    await assert.rejects(
      main(["--destroy"]),
      usage(/--destroy: give --kubeconfig \(or kubeconfig in --args\)/),
    );
    await assert.rejects(main(["--destroy", "--nodes", "5"]), usage(/--destroy: give --kubeconfig/));
    // A port nothing listens on any more: the uninstall cannot read the release.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = file(
      "unreachable-kubeconfig",
      `apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:${port}', insecure-skip-tls-verify: true}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n`,
    );
    await assert.rejects(
      main(["--destroy", "--kubeconfig", unreachable, "--yes", "--time-scale", "10"]),
      usage(/--time-scale: for the simulated cluster only/),
    );
    await assert.rejects(
      main(["--destroy", "--kubeconfig", unreachable, "--yes", "--out", dir]),
      usage(/--out: not with --destroy/),
    );
    assert.equal(await main(["--destroy", "--kubeconfig", unreachable, "--yes"]), 3);
    assert.match(stderr, /the uninstall could not run: .*ECONNREFUSED/);
  });
});
