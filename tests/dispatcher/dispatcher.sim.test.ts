// The dispatcher against the simulator, through the real HTTP API (client-node), checked against the simulator's
// store and audit log (ground truth), never against the dispatcher's own bookkeeping alone.
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { startSimulator } from "../../sim";
import type { FleetNode, Simulator, SimulatorOptions } from "../../sim/types";
import { compileNodeSelector, DEFAULT_INSTALL_EXPRESSIONS } from "../../chart/selectors";
import { jobName } from "../../dispatcher/naming";
import { runDispatcher, type DispatcherOptions, type ResultsDocument } from "../../dispatcher/run";
import { silentLogger } from "../../dispatcher/log";
import {
  assertCoveredExactlyOnce,
  assertResultsMatchTruth,
  controlPlane,
  createOwnerJob,
  installTemplate,
  jobsPerNode,
  NS,
  OWNER_JOB,
  PREFIX,
  rng,
  tainted,
  worker,
  writeTemplate,
} from "./helpers";

const INSTALL_SELECTOR = compileNodeSelector({ "kubernetes.io/os": "linux" }, DEFAULT_INSTALL_EXPRESSIONS);
/** Simulated ms per real ms: a 2-minute install lasts 20 ms. */
const FAST = 6000;

function kubeConfigOf(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

async function withSim<T>(options: SimulatorOptions, body: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = await startSimulator({ timeScale: FAST, podStartDelayMs: 500, ...options });
  try {
    return await body(sim);
  } finally {
    await sim.close();
  }
}

function baseOptions(template: string, extra: Partial<DispatcherOptions> = {}): DispatcherOptions {
  return {
    jobTemplate: template,
    namePrefix: PREFIX,
    ownerJobName: OWNER_JOB,
    namespace: NS,
    parallelism: 37,
    nodeSelectors: [INSTALL_SELECTOR],
    stuckAfterSecs: 600,
    ...extra,
  };
}

const quiet = { logger: silentLogger, retry: { baseDelayMs: 20, maxDelayMs: 500 } };

describe("dispatcher against the simulator", function () {
  this.timeout(300_000);

  it("covers 1,000 nodes exactly once at parallelism 37, skipping unselected and tainted nodes", async () => {
    const random = rng(7);
    const fleet: FleetNode[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 940; i++) {
      const name = `worker-${String(i).padStart(4, "0")}`;
      // The first wave (dispatched in name order) lasts 30 simulated minutes, 3 s real: time enough for the
      // dispatcher to fill all 37 slots even on a busy machine before any of them frees.
      const durationMs = i < 37 ? 1_800_000 : 30_000 + Math.floor(random() * 150_000);
      fleet.push(worker(name, { kind: "succeed", durationMs }));
      expected.push(name);
    }
    for (let i = 0; i < 20; i++) fleet.push(controlPlane(`cp-${i}`));
    for (let i = 0; i < 20; i++) fleet.push(tainted(`gpu-${i}`));
    for (let i = 0; i < 20; i++) fleet.push({ name: `win-${i}`, labels: { "kubernetes.io/os": "windows" } });
    // Installs of 30 s to 3 min last 50-300 ms real: short enough for a unit test of 1,000 nodes.
    await withSim({ fleet: { nodes: fleet }, timeScale: 600 }, async (sim) => {
      createOwnerJob(sim);
      // Jobs outlive the run: how fast a TTL deletes them (1 s real here) is a race with this machine's load.
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(baseOptions(template), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
      });
      assert.equal(doc.exitCode, 0, doc.error);
      assert.deepEqual(doc.counts, {
        total: 960,
        targeted: 940,
        succeeded: 940,
        failed: 0,
        skipped: 20,
        unknown: 0,
      });
      assertCoveredExactlyOnce(sim, expected);
      assertResultsMatchTruth(sim, doc);
      const peak = sim.audit.peakActiveJobsByOwner()[PREFIX];
      assert.ok(peak <= 37, `peak active ${peak} > 37`);
      assert.equal(peak, 37, `peak active ${peak}: the slots were not all used`);
      const gpu = doc.nodes.find((n) => n.node === "gpu-3");
      assert.equal(gpu?.reason, "Tainted");
      assert.match(gpu?.message ?? "", /dedicated=gpu:NoSchedule.*\n.*key: dedicated/s);
      // One watch-based tracker: requests per node stay constant (no GET per Job per poll).
      const counts = sim.audit.requestCounts();
      assert.equal(counts["get jobs"] ?? 0, 1, "only the owner Job is read by GET");
      assert.equal(counts["create jobs"], 940);
    });
  });

  it("isolates failures, reports why from the pods, and lets retries within backoffLimit succeed", async () => {
    const fleet: FleetNode[] = [];
    const failing = new Set<string>();
    const flaky = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const name = `w-${i}`;
      if (i % 33 === 5) {
        failing.add(name);
        fleet.push(
          worker(name, {
            kind: "fail",
            failure: { container: "host-check", exitCode: 1, message: "no usable virtualization backend" },
          }),
        );
      } else if (i % 10 === 3) {
        flaky.add(name);
        fleet.push(worker(name, { kind: "failThenSucceed", failures: 2 }));
      } else fleet.push(worker(name));
    }
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      const doc = await runDispatcher(
        // Failed Jobs and their pods outlive the run, so the reasons are read from pods on any machine.
        baseOptions(writeTemplate(installTemplate({ backoffLimit: 3, ttlSeconds: 50_000_000 })), {
          parallelism: 10,
        }),
        {
          kubeConfig: kubeConfigOf(sim.kubeconfigPath),
          ...quiet,
        },
      );
      assert.equal(doc.exitCode, 1);
      assert.equal(doc.counts.failed, failing.size);
      assert.equal(doc.counts.succeeded, 100 - failing.size);
      assertResultsMatchTruth(sim, doc);
      for (const r of doc.nodes) {
        if (failing.has(r.node)) {
          assert.equal(r.outcome, "failed");
          assert.equal(r.reason, "BackoffLimitExceeded");
          assert.equal(r.attempts, 4);
          assert.equal(
            r.message,
            "container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]",
          );
          assert.ok(r.startedAt && r.finishedAt, "failed nodes carry their times");
        } else if (flaky.has(r.node)) {
          assert.equal(r.outcome, "succeeded", `${r.node}: ${r.message}`);
          assert.equal(r.attempts, 3);
        } else assert.equal(r.attempts, 1);
      }
      const truth = jobsPerNode(sim);
      for (const node of failing)
        assert.equal(truth.get(node)?.jobs.length, 1, "a failed node is not re-dispatched");
    });
  });

  it("degrades to the Job's condition when pods cannot be read, and reports stuck pods and the timeout", async () => {
    const fleet = [
      worker("ok-1"),
      worker("pull-1", { kind: "imagePullError" }),
      worker("hang-1", { kind: "hang" }),
      worker("ok-2"),
    ];
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      const doc = await runDispatcher(
        baseOptions(writeTemplate(installTemplate()), {
          stuckAfterSecs: 0.3,
          // pull-1 must be seen stuck before the timeout: at 2 s a machine at load 18 once got there first.
          timeoutSecs: 10,
          pollIntervalSecs: 0.1,
        }),
        { kubeConfig: kubeConfigOf(sim.kubeconfigPath), ...quiet },
      );
      assert.equal(doc.exitCode, 1);
      assert.equal(doc.timedOut, true);
      const byNode = new Map(doc.nodes.map((n) => [n.node, n]));
      assert.equal(byNode.get("ok-1")?.outcome, "succeeded");
      assert.equal(byNode.get("pull-1")?.reason, "Stuck");
      assert.match(byNode.get("pull-1")?.message ?? "", /(ErrImagePull|ImagePullBackOff)/);
      assert.equal(byNode.get("hang-1")?.reason, "Timeout");
      assert.equal(byNode.get("hang-1")?.job, jobName(PREFIX, "hang-1"));
    });
  });

  it("pages node LISTs with --node-page-size 7 and unions repeated selectors", async () => {
    const fleet: FleetNode[] = [];
    for (let i = 0; i < 30; i++) fleet.push(worker(`a-${i}`, undefined, { pool: "a" }));
    for (let i = 0; i < 20; i++) fleet.push(worker(`b-${i}`, undefined, { pool: "b" }));
    for (let i = 0; i < 10; i++) fleet.push(worker(`c-${i}`, undefined, { pool: "c" }));
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      const doc = await runDispatcher(
        baseOptions(writeTemplate(installTemplate()), {
          nodeSelectors: ["pool=a", "pool in (b)", "pool=a"],
          nodePageSize: 7,
          parallelism: 5,
        }),
        { kubeConfig: kubeConfigOf(sim.kubeconfigPath), ...quiet },
      );
      assert.equal(doc.exitCode, 0, doc.error);
      const expected = fleet.filter((n) => n.labels?.pool !== "c").map((n) => n.name);
      assertCoveredExactlyOnce(sim, expected);
      const lists = sim.audit
        .requests({ verb: "list", resource: "nodes" })
        .filter((r) => !r.fieldSelector?.startsWith("metadata.name="));
      // ceil(30/7)=5 pages for pool=a (twice) and ceil(20/7)=3 for pool in (b).
      assert.equal(lists.length, 5 + 3 + 5);
      assert.ok(sim.audit.peakActiveJobsByOwner()[PREFIX] <= 5);
    });
  });

  it("deletes Jobs of an earlier run before opening a slot, adopts this run's Jobs, refuses foreign names", async () => {
    const fleet = Array.from({ length: 12 }, (_, i) => worker(`n-${i}`));
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      const oldUid = createOwnerJob(sim, "old-dispatcher");
      const uid = createOwnerJob(sim);
      const job = (node: string, ownerUid: string, ownerName: string, owner = PREFIX) => ({
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: {
          name: jobName(PREFIX, node),
          namespace: NS,
          labels: { "kata-deploy-job-dispatcher/owner": owner },
          annotations: { "kata-deploy-job-dispatcher/node-name": node },
          ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: ownerName, uid: ownerUid }],
        },
        spec: {
          backoffLimit: 0,
          template: {
            spec: { nodeName: node, restartPolicy: "Never", containers: [{ name: "c", image: "x" }] },
          },
        },
      });
      sim.setOutcome("n-0", { kind: "hang" });
      sim.setOutcome("n-1", { kind: "hang" });
      sim.create("jobs", job("n-0", oldUid, "old-dispatcher"));
      sim.create("jobs", job("n-1", oldUid, "old-dispatcher"));
      sim.create("jobs", job("n-2", uid, OWNER_JOB));
      sim.create("jobs", job("n-3", uid, OWNER_JOB, "someone-else"));
      await sim.waitFor(() => sim.list("pods", { namespace: NS }).length >= 3, 10_000);
      sim.setOutcome("n-0", { kind: "succeed" });
      sim.setOutcome("n-1", { kind: "succeed" });
      const doc = await runDispatcher(baseOptions(writeTemplate(installTemplate()), { parallelism: 3 }), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
      });
      const byNode = new Map(doc.nodes.map((n) => [n.node, n]));
      assert.equal(byNode.get("n-3")?.reason, "NameTaken");
      assert.equal(
        doc.counts.succeeded,
        11,
        JSON.stringify(doc.nodes.filter((n) => n.outcome !== "succeeded")),
      );
      const truth = sim.audit.jobsByNode();
      // n-0/n-1: the old run's Job was deleted, then exactly one new one ran, never both at once.
      for (const node of ["n-0", "n-1"]) {
        // The earlier run's Job ends deleted (or failed, as its pods were removed by the foreground delete).
        const outcomes = truth[node].jobs.map((j) => j.outcome);
        assert.equal(outcomes.length, 2, JSON.stringify(truth[node].jobs));
        assert.ok(["deleted", "failed"].includes(outcomes[0]), JSON.stringify(truth[node].jobs));
        assert.equal(outcomes[1], "succeeded");
        assert.equal(truth[node].maxConcurrentActive, 1);
      }
      // n-2 belonged to this run: adopted, not recreated.
      assert.equal(truth["n-2"].jobs.length, 1);
      assert.ok(sim.audit.peakActiveJobsByOwner()[PREFIX] <= 3);
      const deletes = sim.audit.requests({ verb: "delete", resource: "jobs" });
      assert.equal(deletes.length, 2);
      const firstCreate = sim.audit
        .requests({ verb: "create", resource: "jobs" })
        .find((r) => r.user !== "admin" || r.code === 201);
      assert.ok(
        firstCreate && firstCreate.time >= Math.max(...deletes.map((d) => d.time)),
        "a Job was created before the stale ones were deleted",
      );
    });
  });

  it("skips a node replaced (new UID) or relabelled out of the selection before its turn", async () => {
    const fleet = Array.from({ length: 6 }, (_, i) => worker(`r-${i}`));
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      let done = false;
      const doc = await runDispatcher(baseOptions(writeTemplate(installTemplate()), { parallelism: 1 }), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
        onProgress: (p) => {
          if (done || p.done < 1) return;
          done = true;
          const old = sim.get("nodes", undefined, "r-4");
          sim.delete("nodes", undefined, "r-4");
          sim.create("nodes", {
            apiVersion: "v1",
            kind: "Node",
            metadata: { name: "r-4", labels: old?.metadata.labels },
            spec: {},
          });
          sim.patch("nodes", undefined, "r-5", { metadata: { labels: { "kubernetes.io/os": "windows" } } });
        },
      });
      const byNode = new Map(doc.nodes.map((n) => [n.node, n]));
      assert.equal(byNode.get("r-4")?.outcome, "skipped");
      assert.equal(byNode.get("r-4")?.reason, "NodeReplaced");
      assert.equal(byNode.get("r-5")?.reason, "NotSelected");
      assert.equal(jobsPerNode(sim).has("r-4"), false);
      assert.equal(jobsPerNode(sim).has("r-5"), false);
      assert.equal(doc.exitCode, 0);
    });
  });

  it("reports a node whose Job is deleted under it as unknown (never failed), and exits 1", async () => {
    const fleet = [worker("d-0", { kind: "hang" }), worker("d-1"), worker("d-2")];
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      const name = jobName(PREFIX, "d-0");
      const run = runDispatcher(baseOptions(writeTemplate(installTemplate()), { parallelism: 2 }), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
      });
      await sim.waitFor(() => sim.get("jobs", NS, name) !== undefined, 10_000);
      sim.delete("jobs", NS, name, { propagationPolicy: "Background" });
      const doc = await run;
      assert.equal(doc.exitCode, 1);
      const d0 = doc.nodes.find((n) => n.node === "d-0");
      assert.equal(d0?.outcome, "unknown");
      assert.equal(d0?.reason, "JobDeleted");
      assert.match(d0?.message ?? "", /was deleted before it was seen to finish/);
      assert.equal(doc.counts.unknown, 1);
      assert.equal(doc.counts.succeeded, 2);
    });
  });

  it("stops creating Jobs on SIGTERM, reports the rest as Interrupted and exits 1", async () => {
    // Installs of 2 minutes last 200 ms: without the stop, all 30 would run within ~2 s.
    const fleet = Array.from({ length: 30 }, (_, i) =>
      worker(`t-${i}`, { kind: "succeed", durationMs: 120_000 }),
    );
    await withSim({ fleet: { nodes: fleet }, timeScale: 600 }, async (sim) => {
      createOwnerJob(sim);
      const stop = new AbortController();
      let createdAtStop = -1;
      const created = () =>
        sim.audit.requests({ verb: "create", resource: "jobs" }).filter((r) => r.code < 300).length;
      const doc = await runDispatcher(baseOptions(writeTemplate(installTemplate()), { parallelism: 3 }), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
        stopSignal: stop.signal,
        onProgress: (p) => {
          if (p.done >= 3 && createdAtStop < 0) {
            createdAtStop = created();
            stop.abort();
          }
        },
      });
      assert.equal(doc.exitCode, 1);
      assert.equal(doc.interrupted, true);
      // Dispatches already under way may finish (at most P); nothing new starts.
      assert.ok(created() <= createdAtStop + 3, `${created()} Jobs created, ${createdAtStop} at SIGTERM`);
      assert.ok(doc.nodes.filter((n) => n.reason === "Interrupted").length >= 30 - created());
      assert.equal(doc.counts.total, 30);
    });
  });

  it("waits for the eligible set to settle before dispatching (--wait-for-nodes-secs)", async () => {
    const fleet = [
      ...Array.from({ length: 3 }, (_, i) => worker(`s-${i}`, undefined, { nfd: "true" })),
      worker("late-0"),
      worker("late-1"),
    ];
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      // Feature labels arrive while the dispatcher waits, as with NFD right after install.
      setTimeout(() => {
        for (const name of ["late-0", "late-1"])
          sim.patch("nodes", undefined, name, { metadata: { labels: { nfd: "true" } } });
      }, 300);
      const doc = await runDispatcher(
        baseOptions(writeTemplate(installTemplate()), {
          nodeSelectors: ["nfd=true"],
          waitForNodesSecs: 5,
          nodeSettleSecs: 1.5,
          pollIntervalSecs: 0.1,
        }),
        { kubeConfig: kubeConfigOf(sim.kubeconfigPath), ...quiet },
      );
      assert.equal(doc.exitCode, 0, doc.error);
      assertCoveredExactlyOnce(
        sim,
        fleet.map((n) => n.name),
      );
    });
  });

  it("dispatches explicit --nodes (deduplicated), skipping one a DaemonSet would not tolerate", async () => {
    const fleet = [worker("e-0"), worker("e-1"), tainted("e-gpu"), worker("e-other")];
    await withSim({ fleet: { nodes: fleet } }, async (sim) => {
      createOwnerJob(sim);
      const doc = await runDispatcher(
        baseOptions(writeTemplate(installTemplate()), {
          nodes: ["e-1", "e-0", "e-gpu", "e-1"],
          nodeSelectors: ["ignored=yes"],
        }),
        {
          kubeConfig: kubeConfigOf(sim.kubeconfigPath),
          ...quiet,
        },
      );
      assert.equal(doc.exitCode, 0, doc.error);
      assert.deepEqual(
        doc.nodes.map((n) => [n.node, n.outcome, n.reason]),
        [
          ["e-0", "succeeded", undefined],
          ["e-1", "succeeded", undefined],
          ["e-gpu", "skipped", "Tainted"],
        ],
      );
      assertCoveredExactlyOnce(sim, ["e-0", "e-1"]);
      assert.equal(
        sim.audit.requests({ verb: "get", resource: "nodes" }).length,
        0,
        "explicit nodes are read by LIST, not GET",
      );
    });
  });

  it("exits 2 with a clear message on bad input, before creating anything", async () => {
    await withSim({ fleet: { nodes: [worker("x-1")] } }, async (sim) => {
      createOwnerJob(sim);
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const template = writeTemplate(installTemplate());
      const cases: [Partial<DispatcherOptions>, RegExp][] = [
        [{ nodeSelectors: ["a in (b"] }, /--node-selector "a in \(b" is not a valid label selector/],
        [
          { jobTemplate: "/nonexistent/install-job.yaml" },
          /--job-template \/nonexistent\/install-job.yaml: cannot read it \(ENOENT\)/,
        ],
        [{ jobTemplate: writeTemplate("kind: Pod\n") }, /apiVersion must be "batch\/v1"/],
        [{ nodes: ["x-1", "ghost"] }, /--nodes: no such node\(s\): ghost/],
        [{ ownerJobName: "missing" }, /--owner-job-name missing: no such Job in namespace kube-system/],
        [
          {
            nodeSelectors: ["kubernetes.io/os=linux"],
            waitForNodesSecs: 0.2,
            nodeSettleSecs: 0,
            pollIntervalSecs: 0.05,
            nodeFieldSelector: "metadata.name=nope",
          },
          /after waiting 0.2s/,
        ],
        [{ parallelism: 0 }, /--parallelism must be a number >= 1/],
        [
          { jobTemplate: writeTemplate(installTemplate().replace("- name: cri", "- name: Cri_Bad")) },
          /the API server rejected the Job built from .* for node x-1: .*fix the template/,
        ],
      ];
      for (const [extra, message] of cases) {
        const doc = await runDispatcher({ ...baseOptions(template), ...extra }, { kubeConfig, ...quiet });
        assert.equal(doc.exitCode, 2, `${JSON.stringify(extra)}: ${doc.error}`);
        assert.match(doc.error ?? "", message);
        assert.equal(
          sim.audit.requests({ verb: "create", resource: "jobs" }).filter((r) => r.code < 300).length,
          0,
          `${JSON.stringify(extra)} created a Job`,
        );
      }
      const dry = await runDispatcher(baseOptions(template, { dryRun: true }), { kubeConfig, ...quiet });
      assert.equal(dry.exitCode, 0);
      assert.deepEqual(dry.plan, [{ node: "x-1", job: jobName(PREFIX, "x-1") }]);
      assert.equal(
        sim.audit.requests({ verb: "create", resource: "jobs" }).filter((r) => r.code < 300).length,
        0,
      );
    });
  });
});

export type { ResultsDocument };
