// The bundled dispatcher as a real process (`node <bundle> <flags>`, KUBECONFIG from the environment), as a Job
// would run it from the ConfigMap: exit codes, results file, and a SIGKILL mid-rollout followed by a restart.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { startSimulator } from "../../sim";
import type { Simulator } from "../../sim/types";
import { buildDispatcherBundleWithSizes, CONFIGMAP_BUDGET, writeBundle } from "../../dispatcher/bundle";
import type { ResultsDocument } from "../../dispatcher/run";
import {
  assertCoveredExactlyOnce,
  assertResultsMatchTruth,
  createOwnerJob,
  installTemplate,
  NS,
  OWNER_JOB,
  PREFIX,
  rng,
  worker,
  writeTemplate,
} from "./helpers";
import { tempDir } from "../tempDir";

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(
  entry: string,
  args: string[],
  env: Record<string, string>,
  onStart?: (child: ChildProcess) => void,
): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    onStart?.(child);
  });
}

describe("dispatcher bundle as a process", function () {
  this.timeout(300_000);
  let entry = "";
  let bytes = 0;

  before(async () => {
    const { bundle, sizes } = await buildDispatcherBundleWithSizes();
    bytes = bundle.bytes;
    assert.ok(sizes.configMapBytes <= CONFIGMAP_BUDGET);
    entry = writeBundle(bundle, tempDir("dispatcher-bundle-"));
  });

  it("fits a ConfigMap and prints usage errors with exit 2", async () => {
    assert.ok(bytes < 1024 * 1024, `bundle is ${bytes} bytes`);
    const usage = await run(entry, ["--name-prefix", "x"], {});
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /required option '--job-template <path>' not specified/);
    const bad = await run(
      entry,
      ["--job-template", "/nope.yaml", "--name-prefix", "x", "--parallelism", "two"],
      {},
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--parallelism takes a whole number >= 1, got "two"/);
  });

  it("runs a rollout from KUBECONFIG, writes the results file, and survives SIGKILL plus restart", async () => {
    const random = rng(3);
    const fleet = Array.from({ length: 150 }, (_, i) =>
      worker(`k-${String(i).padStart(3, "0")}`, {
        kind: "succeed",
        durationMs: 30_000 + Math.floor(random() * 60_000),
      }),
    );
    const sim: Simulator = await startSimulator({
      fleet: { nodes: fleet },
      timeScale: 1500,
      podStartDelayMs: 500,
    });
    try {
      createOwnerJob(sim);
      const dir = tempDir("dispatcher-results-");
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const args = (results: string) => [
        `--job-template=${template}`,
        `--name-prefix=${PREFIX}`,
        `--owner-job-name=${OWNER_JOB}`,
        "--parallelism=10",
        "--node-selector=kubernetes.io/os=linux",
        `--results-file=${results}`,
        "--log-format=json",
        "--progress-interval-secs=0.2",
      ];
      const env = { KUBECONFIG: sim.kubeconfigPath, POD_NAMESPACE: NS };
      const owned = () =>
        sim.list("jobs", { namespace: NS, labelSelector: `kata-deploy-job-dispatcher/owner=${PREFIX}` })
          .length;
      const killed = await run(entry, args(path.join(dir, "first.json")), env, (child) => {
        const timer = setInterval(() => {
          if (owned() >= 40) {
            clearInterval(timer);
            child.kill("SIGKILL");
          }
        }, 5);
        child.on("close", () => clearInterval(timer));
      });
      assert.equal(killed.signal, "SIGKILL", killed.stderr.slice(-500));
      const afterKill = owned();
      assert.ok(afterKill >= 40 && afterKill < 150, `${afterKill} Jobs when killed`);
      const second = await run(entry, args(path.join(dir, "second.json")), env);
      assert.equal(second.code, 0, second.stderr.slice(-1000));
      assert.match(second.stdout, /summary: 150 succeeded, 0 failed, 0 skipped/);
      const lines = second.stderr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { level: string; msg: string });
      assert.ok(
        lines.some((l) => l.msg.startsWith("progress: ")),
        "progress lines on stderr",
      );
      assert.ok(
        lines.some((l) => /adopted/.test(l.msg)),
        "the restart adopted the first run's Jobs",
      );
      const doc = JSON.parse(readFileSync(path.join(dir, "second.json"), "utf8")) as ResultsDocument;
      assert.equal(doc.exitCode, 0);
      assert.equal(doc.counts.succeeded, 150);
      assert.equal(doc.ownerJob?.name, OWNER_JOB);
      assertCoveredExactlyOnce(
        sim,
        fleet.map((n) => n.name),
      );
      assertResultsMatchTruth(sim, doc);
      assert.ok(sim.audit.peakActiveJobsByOwner()[PREFIX] <= 10);

      // SIGTERM: no new Jobs, a summary, exit 1 (a new owner so the rollout starts over).
      sim.create("jobs", {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "second-dispatcher", namespace: NS },
        spec: {
          suspend: true,
          template: { spec: { restartPolicy: "Never", containers: [{ name: "d", image: "node" }] } },
        },
      });
      // Without the stop, these 150 installs (80 ms each here) would all run within about 2 s.
      for (const node of fleet) sim.setOutcome(node.name, { kind: "succeed", durationMs: 120_000 });
      let ownedAtTerm = -1;
      const termArgs = args(path.join(dir, "term.json")).map((a) =>
        a.startsWith("--name-prefix=")
          ? "--name-prefix=second"
          : a.startsWith("--owner-job-name=")
            ? "--owner-job-name=second-dispatcher"
            : a,
      );
      const secondOwned = () =>
        sim.list("jobs", { namespace: NS, labelSelector: "kata-deploy-job-dispatcher/owner=second" }).length;
      const term = await run(entry, termArgs, env, (child) => {
        const timer = setInterval(() => {
          if (secondOwned() >= 10) {
            clearInterval(timer);
            ownedAtTerm = secondOwned();
            child.kill("SIGTERM");
          }
        }, 5);
        child.on("close", () => clearInterval(timer));
      });
      assert.equal(term.code, 1, term.stderr.slice(-500));
      assert.match(term.stdout, /summary: \d+ succeeded, \d+ failed, 0 skipped \(of 150 node\(s\)/);
      // Dispatches under way at SIGTERM may complete (at most P = 10); nothing new starts.
      assert.ok(secondOwned() <= ownedAtTerm + 10, `${secondOwned()} Jobs, ${ownedAtTerm} at SIGTERM`);
      const termDoc = JSON.parse(readFileSync(path.join(dir, "term.json"), "utf8")) as ResultsDocument;
      assert.equal(termDoc.interrupted, true);
      assert.ok(termDoc.nodes.filter((n) => n.reason === "Interrupted").length >= 150 - secondOwned());
    } finally {
      await sim.close();
    }
  });

  it("speaks chart 4.2.0's language: its install flags label the nodes, and a reconcile tick yields to the live hook", async () => {
    const nodes = Array.from({ length: 6 }, (_, i) => worker(`t-${i}`));
    const sim: Simulator = await startSimulator({ fleet: { nodes }, timeScale: 6000, podStartDelayMs: 500 });
    try {
      createOwnerJob(sim);
      createOwnerJob(sim, "kata-deploy-reconcile-1");
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const env = { KUBECONFIG: sim.kubeconfigPath, POD_NAMESPACE: NS };
      const common = [
        `--job-template=${template}`,
        `--name-prefix=${PREFIX}`,
        "--node-selector=kubernetes.io/os=linux",
        "--tracking-label-prefix=kata-deploy-job-dispatcher",
        "--node-label-key=katacontainers.io/kata-runtime",
        "--instance-label-prefix=kata-deploy.katacontainers.io",
        "--require-node-runtime-version",
        "--require-node-machine-id",
        "--multi-install-suffix=blue",
        "--node-label=true",
      ];
      const hook = await run(
        entry,
        [
          ...common,
          `--cleanup-job-template=${template}`,
          `--owner-job-name=${OWNER_JOB}`,
          "--parallelism=6",
          "--wait-for-nodes-secs=0",
          "--node-settle-secs=15",
          "--claim-node-pending",
          "--wait-node-ready-secs=300",
          "--require-node-handlers=kata-qemu-blue,kata-clh-blue",
          "--remove-node-taints=katacontainers.io/starting",
        ],
        env,
      );
      assert.equal(hook.code, 0, hook.stderr.slice(-1000));
      assert.match(hook.stdout, /summary: 6 succeeded, 0 failed, 0 skipped/);
      for (const n of nodes) {
        const labels = sim.get("nodes", undefined, n.name)?.metadata.labels ?? {};
        assert.equal(labels["katacontainers.io/kata-runtime"], "true", n.name);
        assert.equal(labels["kata-deploy.katacontainers.io/blue"], "true", n.name);
        assert.equal(labels["kata-deploy-job-dispatcher/result"], "succeeded", n.name);
      }
      // The hook's Job is still there and not ended (suspended here): a tick yields to it, creating nothing.
      const before = sim.audit.requestCounts()["create jobs"];
      const tick = await run(
        entry,
        [
          ...common,
          "--owner-job-name=kata-deploy-reconcile-1",
          "--yield-to-live-run",
          "--skip-satisfied-nodes",
        ],
        env,
      );
      assert.equal(tick.code, 0, tick.stderr.slice(-1000));
      assert.match(tick.stdout, /yielded: another run of kata-deploy-install is still working/);
      assert.equal(sim.audit.requestCounts()["create jobs"], before);
    } finally {
      await sim.close();
    }
  });
});
