// The flags of the 4.1 in-tree dispatcher and k8s-job-dispatcher 0.3 beyond chart 4.0.0's set (issue 14 item 4),
// run against the simulator and checked in its store and audit log.
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { startSimulator } from "../../sim";
import type { FleetNode, KubeObject, Simulator, SimulatorOptions } from "../../sim/types";
import { runDispatcher, type DispatcherOptions } from "../../dispatcher/run";
import { silentLogger } from "../../dispatcher/log";
import {
  assertCoveredExactlyOnce,
  installTemplate,
  jobsPerNode,
  NS,
  OWNER_JOB,
  PREFIX,
  worker,
  writeTemplate,
} from "./helpers";

const FAST = 6000;
const quiet = { logger: silentLogger, retry: { baseDelayMs: 20, maxDelayMs: 500 } };
/** The node that runs the dispatcher's own pods (never selected by the tests below). */
const INFRA = "infra-0";
const WORKERS = ["w-0", "w-1", "w-2", "w-3", "w-4", "w-5"];

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

function fleet(extra: FleetNode[] = []): { nodes: FleetNode[] } {
  // The dispatcher's pod runs for 100 simulated hours (a minute of real time): its run is live throughout a test.
  const infra: FleetNode = { ...worker(INFRA), outcome: { kind: "succeed", durationMs: 360_000_000 } };
  return { nodes: [infra, ...WORKERS.map((n) => worker(n)), ...extra] };
}

/** A running dispatcher Job as its CronJob would make it: its pod (on INFRA) is the one the flag names. */
async function runningOwnerJob(sim: Simulator, name: string): Promise<{ uid: string; pod: string }> {
  const job = sim.create("jobs", {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: NS },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: "Never",
          nodeName: INFRA,
          containers: [{ name: "dispatcher", image: "node:22-alpine" }],
        },
      },
    },
  });
  const uid = job.metadata.uid as string;
  const podOf = () =>
    sim.list("pods", { namespace: NS }).find((p) => p.metadata.ownerReferences?.some((r) => r.uid === uid));
  await sim.waitFor(() => podOf() !== undefined, 60_000);
  return { uid, pod: podOf()?.metadata.name as string };
}

function options(template: string, extra: Partial<DispatcherOptions>): DispatcherOptions {
  return {
    jobTemplate: template,
    namePrefix: PREFIX,
    namespace: NS,
    parallelism: 3,
    nodes: WORKERS,
    stuckAfterSecs: 600,
    ...extra,
  };
}

const SHARED = "katacontainers.io/kata-runtime";
const BLUE = "kata-deploy.katacontainers.io/blue";
const RED = "kata-deploy.katacontainers.io/red";
/** The node work's pacing, shortened: 6 label checks 20 ms apart. */
const FAST_NODE_WORK = { checkIntervalMs: 20, handlerWaitMs: 2000 };

/** The install labels of a node (the shared one and every mark). */
function pick(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(labels).filter(([k]) => k === SHARED || k.startsWith("kata-deploy.katacontainers.io/")),
  );
}

/** The per-node Job of an owner value on a node, as stored now. */
function jobOf(sim: Simulator, owner: string, node: string): KubeObject | undefined {
  return sim
    .list("jobs", { namespace: NS, labelSelector: `kata-deploy-job-dispatcher/owner=${owner}` })
    .find((j) => j.metadata.annotations?.["kata-deploy-job-dispatcher/node-name"] === node);
}

function jobComplete(job: KubeObject | undefined): boolean {
  const conditions = (job?.status as { conditions?: { type: string; status: string }[] } | undefined)
    ?.conditions;
  return (conditions ?? []).some((c) => c.type === "Complete" && c.status === "True");
}

/** Runs `check` after every write to the simulator's store until the returned function is called. */
function watchStore(sim: Simulator, check: () => void): () => void {
  let stopped = false;
  const watching = sim
    .waitFor(() => {
      if (!stopped) check();
      return stopped;
    }, 280_000)
    .catch(() => undefined);
  return () => {
    stopped = true;
    // One write wakes the predicate so the wait ends.
    sim.patch("nodes", undefined, INFRA, { metadata: { annotations: { "test/done": "true" } } });
    void watching;
  };
}

function labelsOf(sim: Simulator, node: string): Record<string, string> {
  return (sim.get("nodes", undefined, node)?.metadata.labels ?? {}) as Record<string, string>;
}

describe("dispatcher flags of the 4.1 and 0.3 dispatchers", function () {
  this.timeout(300_000);

  it("--tracking-label-prefix names the Jobs' owner/node labels, the annotation and the node records", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      const owner = await runningOwnerJob(sim, OWNER_JOB);
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(
        options(template, { ownerJobName: OWNER_JOB, trackingLabelPrefix: "k8s-job-dispatcher" }),
        { kubeConfig: kubeConfigOf(sim.kubeconfigPath), ...quiet },
      );
      assert.equal(doc.exitCode, 0, doc.error);
      assert.equal(doc.ownerLabel, "k8s-job-dispatcher/owner");
      const jobs = sim
        .list("jobs", { namespace: NS, labelSelector: `k8s-job-dispatcher/owner=${PREFIX}` })
        .filter((j) => j.metadata.uid !== owner.uid);
      assert.deepEqual(
        jobs.map((j) => j.metadata.annotations?.["k8s-job-dispatcher/node-name"]).sort(),
        WORKERS,
      );
      for (const job of jobs) {
        const labels = job.metadata.labels ?? {};
        assert.equal(
          labels["k8s-job-dispatcher/node"],
          job.metadata.annotations?.["k8s-job-dispatcher/node-name"],
        );
        assert.equal(
          labels["kata-deploy-job-dispatcher/owner"],
          undefined,
          "the default prefix is not written",
        );
        const podLabels = (job.spec as { template: { metadata: { labels: Record<string, string> } } })
          .template.metadata.labels;
        assert.equal(podLabels["k8s-job-dispatcher/owner"], PREFIX);
      }
      // The LIST and the watch select by the prefix's owner label.
      const reads = [
        ...sim.audit.requests({ verb: "list", resource: "jobs" }),
        ...sim.audit.requests({ verb: "watch", resource: "jobs" }),
      ];
      assert.ok(reads.length >= 2);
      for (const r of reads) assert.equal(r.labelSelector, `k8s-job-dispatcher/owner=${PREFIX}`);
      for (const node of WORKERS) {
        const labels = labelsOf(sim, node);
        assert.equal(labels["k8s-job-dispatcher/result"], "succeeded", node);
        assert.equal(labels["kata-deploy-job-dispatcher/result"], undefined, node);
      }
      const events = sim.list("events", { namespace: "default" }) as (KubeObject & {
        reason?: string;
        source?: { component?: string };
      })[];
      assert.equal(events.filter((e) => e.reason === "JobSucceeded").length, WORKERS.length);
      assert.ok(events.every((e) => e.source?.component === "k8s-job-dispatcher"));

      const bad = await runDispatcher(options(template, { trackingLabelPrefix: "Not_A_Prefix" }), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
      });
      assert.equal(bad.exitCode, 2);
      assert.match(
        bad.error ?? "",
        /--tracking-label-prefix "Not_A_Prefix" is not valid: a label key prefix/,
      );
    });
  });

  it("--owner-job-from-pod owns the Jobs by the Job that created the pod; exclusive with --owner-job-name", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      const owner = await runningOwnerJob(sim, "kata-deploy-reconcile-29000000");
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(options(template, { ownerJobFromPod: owner.pod }), {
        kubeConfig,
        ...quiet,
      });
      assert.equal(doc.exitCode, 0, doc.error);
      assert.deepEqual(doc.ownerJob, { name: "kata-deploy-reconcile-29000000", uid: owner.uid });
      assertCoveredExactlyOnce(sim, WORKERS);
      const perNode = sim.list("jobs", {
        namespace: NS,
        labelSelector: `kata-deploy-job-dispatcher/owner=${PREFIX}`,
      });
      assert.equal(perNode.length, WORKERS.length);
      for (const job of perNode) {
        assert.deepEqual(
          job.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
          [["Job", "kata-deploy-reconcile-29000000", owner.uid, false]],
        );
      }
      assert.equal(sim.audit.requests({ verb: "get", resource: "pods" }).length, 1, "the pod is read once");

      const cases: [Partial<DispatcherOptions>, RegExp][] = [
        [
          { ownerJobFromPod: owner.pod, ownerJobName: OWNER_JOB },
          /--owner-job-name and --owner-job-from-pod are mutually exclusive/,
        ],
        [
          { ownerJobFromPod: "no-such-pod" },
          /--owner-job-from-pod no-such-pod: no such pod in namespace kube-system/,
        ],
      ];
      const lonePod = sim.create("pods", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "lone", namespace: NS },
        spec: { nodeName: INFRA, containers: [{ name: "c", image: "busybox" }] },
      });
      cases.push([
        { ownerJobFromPod: lonePod.metadata.name },
        /--owner-job-from-pod lone: pod lone was not created by a Job/,
      ]);
      const createsBefore = sim.audit.requestCounts()["create jobs"];
      for (const [extra, message] of cases) {
        const bad = await runDispatcher(options(template, extra), { kubeConfig, ...quiet });
        assert.equal(bad.exitCode, 2, JSON.stringify(extra));
        assert.match(bad.error ?? "", message);
      }
      assert.equal(
        sim.audit.requestCounts()["create jobs"],
        createsBefore,
        "no Job created on a usage error",
      );
    });
  });

  it("--yield-to-live-run exits 0 without dispatching while another owner Job's run is live, and runs after it ended", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const hook = await runningOwnerJob(sim, OWNER_JOB);
      // The install hook's run holds a per-node Job of this prefix (suspended: it runs no pod).
      sim.create("jobs", {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: {
          name: `${PREFIX}-w-0`,
          namespace: NS,
          labels: { "kata-deploy-job-dispatcher/owner": PREFIX, "kata-deploy-job-dispatcher/node": "w-0" },
          annotations: { "kata-deploy-job-dispatcher/node-name": "w-0" },
          ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: OWNER_JOB, uid: hook.uid }],
        },
        spec: {
          suspend: true,
          template: {
            spec: { restartPolicy: "Never", nodeName: "w-0", containers: [{ name: "c", image: "i" }] },
          },
        },
      });
      const tick = await runningOwnerJob(sim, "kata-deploy-reconcile-1");
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      sim.audit.reset();
      const yielded = await runDispatcher(
        options(template, { ownerJobFromPod: tick.pod, yieldToLiveRun: true }),
        {
          kubeConfig,
          ...quiet,
        },
      );
      assert.equal(yielded.exitCode, 0, yielded.error);
      assert.equal(yielded.yieldedTo, OWNER_JOB);
      assert.deepEqual(yielded.nodes, []);
      const counts = sim.audit.requestCounts();
      assert.equal(counts["create jobs"] ?? 0, 0, "nothing dispatched");
      assert.equal(counts["delete jobs"] ?? 0, 0, "the live run's Jobs are left alone");
      assert.equal(counts["list nodes"] ?? 0, 0, "no node is resolved");

      // The hook's run ends (its deadline fails it): the next tick dispatches, replacing the ended run's Job.
      sim.patch("jobs", NS, OWNER_JOB, { spec: { activeDeadlineSeconds: 1 } });
      await sim.waitFor(
        () =>
          (
            (sim.get("jobs", NS, OWNER_JOB)?.status as { conditions?: { type: string; status: string }[] })
              ?.conditions ?? []
          ).some((c) => c.type === "Failed" && c.status === "True"),
        60_000,
      );
      sim.audit.reset();
      const ran = await runDispatcher(
        options(template, { ownerJobFromPod: tick.pod, yieldToLiveRun: true }),
        {
          kubeConfig,
          ...quiet,
        },
      );
      assert.equal(ran.exitCode, 0, ran.error);
      assert.equal(ran.yieldedTo, undefined);
      assert.equal(ran.counts.succeeded, WORKERS.length);
      assert.equal(sim.audit.requestCounts()["create jobs"], WORKERS.length);

      const bad = await runDispatcher(options(template, { yieldToLiveRun: true }), { kubeConfig, ...quiet });
      assert.equal(bad.exitCode, 2);
      assert.match(bad.error ?? "", /--yield-to-live-run needs an owner/);
    });
  });

  it("--skip-satisfied-nodes leaves out nodes at the finished label value that serve a required handler", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const both = { "katacontainers.io/kata-runtime": "true", "kata-deploy.katacontainers.io/blue": "true" };
      const label = (node: string, labels: Record<string, string>) =>
        sim.patch("nodes", undefined, node, { metadata: { labels } });
      const handlers = (node: string, names: string[]) =>
        sim.patch("nodes", undefined, node, { status: { runtimeHandlers: names.map((name) => ({ name })) } });
      label("w-0", both); // satisfied; reports no handlers (before Kubernetes 1.30): passes
      label("w-1", both);
      handlers("w-1", ["runc", "kata-qemu"]); // satisfied and serving
      label("w-2", { ...both, "kata-deploy.katacontainers.io/blue": "false" }); // pending: never skipped
      label("w-3", both);
      handlers("w-3", ["runc"]); // labelled, but no required handler served
      label("w-4", {
        ...both,
        "kata-deploy.katacontainers.io/default": "true",
        "kata-deploy.katacontainers.io/blue": "",
      });
      // w-5: no labels
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      sim.audit.reset();
      const doc = await runDispatcher(
        options(template, {
          skipSatisfiedNodes: true,
          nodeLabel: "true",
          multiInstallSuffix: "blue",
          requireNodeHandlers: ["kata-qemu", "kata-clh"],
        }),
        { kubeConfig, ...quiet, nodeWorkTiming: FAST_NODE_WORK },
      );
      const satisfied = doc.nodes.filter((n) => n.reason === "Satisfied").map((n) => n.node);
      assert.deepEqual(satisfied, ["w-0", "w-1"]);
      for (const n of doc.nodes.filter((r) => r.reason === "Satisfied")) {
        assert.equal(n.outcome, "succeeded");
        assert.equal(n.attempts, 0);
        assert.equal(n.job, undefined);
      }
      const truth = jobsPerNode(sim);
      assert.deepEqual([...truth.keys()].sort(), ["w-2", "w-3", "w-4", "w-5"]);
      // The nodes that got a Job are labelled after it: a second run has nothing left to do.
      for (const node of ["w-2", "w-4", "w-5"]) assert.equal(labelsOf(sim, node)[BLUE], "true", node);

      const bad = await runDispatcher(options(template, { skipSatisfiedNodes: true }), {
        kubeConfig,
        ...quiet,
      });
      assert.equal(bad.exitCode, 2);
      assert.match(bad.error ?? "", /--skip-satisfied-nodes needs --node-label/);
    });
  });

  it("--claim-node-pending and --node-label: claimed before the Job, labelled after it succeeded, re-applied on drift", async () => {
    const nodes = [...WORKERS.slice(0, 5), "w-5"];
    await withSim({ fleet: fleet([]) }, async (sim) => {
      sim.setOutcome("w-5", { kind: "fail", failure: { exitCode: 1, message: "no virtualization" } });
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      // Another install serves w-1: its shared label is present and is never downgraded by a claim.
      sim.patch("nodes", undefined, "w-1", {
        metadata: { labels: { [SHARED]: "true", "kata-deploy.katacontainers.io/red": "true" } },
      });
      // Ground truth at every store write: a Job on a node only once both labels are there; "true" only after it.
      const violations: string[] = [];
      let drifted = false;
      const stopWatching = watchStore(sim, () => {
        for (const node of nodes) {
          const labels = labelsOf(sim, node);
          const job = jobOf(sim, PREFIX, node);
          // (The wipe of w-3 below removes both on purpose, after its Job succeeded.)
          const wiped = node === "w-3" && drifted;
          if (job && !wiped && (labels[SHARED] === undefined || labels[BLUE] === undefined))
            violations.push(`${node}: Job before its claim`);
          if (labels[BLUE] === "true" && !jobComplete(job))
            violations.push(`${node}: labelled before its Job succeeded`);
        }
      });
      // A kubelet re-registering w-3 with cached labels wipes ours once, right after they were written.
      const drift = sim
        .waitFor(() => labelsOf(sim, "w-3")[BLUE] === "true", 120_000)
        .then(() => {
          drifted = true;
          sim.patch("nodes", undefined, "w-3", { metadata: { labels: { [SHARED]: null, [BLUE]: null } } });
        });
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(
        options(template, {
          nodes,
          ownerJobName: undefined,
          nodeLabel: "true",
          claimNodePending: true,
          multiInstallSuffix: "blue",
        }),
        { kubeConfig, ...quiet, nodeWorkTiming: FAST_NODE_WORK },
      );
      await drift;
      stopWatching();
      assert.deepEqual(violations, []);
      assert.equal(doc.exitCode, 1, "w-5's Job failed");
      for (const node of nodes.filter((n) => n !== "w-5")) {
        const labels = labelsOf(sim, node);
        assert.equal(labels[SHARED], "true", node);
        assert.equal(labels[BLUE], "true", node);
      }
      assert.equal(labelsOf(sim, "w-1")["kata-deploy.katacontainers.io/red"], "true");
      // The failed node stays claimed (pending), so an uninstall finds it.
      assert.equal(labelsOf(sim, "w-5")[SHARED], "false");
      assert.equal(labelsOf(sim, "w-5")[BLUE], "false");
      // w-3's labels were written twice: once, then again after the drift.
      const w3Writes = sim.audit
        .requests({ verb: "patch", resource: "nodes" })
        .filter((r) => r.name === "w-3");
      assert.ok(w3Writes.length >= 3, `w-3 writes: ${w3Writes.length} (claim, label, label again, record)`);
    });
  });

  it("--remove-node-label demotes before the cleanup Job and releases after it, keeping a label another install serves", async () => {
    const nodes = ["w-0", "w-1", "w-2", "w-3"];
    await withSim({ fleet: fleet([]) }, async (sim) => {
      sim.setOutcome("w-3", { kind: "fail" });
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const ours = { [SHARED]: "true", [BLUE]: "true" };
      sim.patch("nodes", undefined, "w-0", { metadata: { labels: ours } }); // only ours: both go
      sim.patch("nodes", undefined, "w-1", { metadata: { labels: { ...ours, [RED]: "true" } } }); // red serves: kept
      sim.patch("nodes", undefined, "w-2", { metadata: { labels: { ...ours, [RED]: "false" } } }); // red pending: demoted
      sim.patch("nodes", undefined, "w-3", { metadata: { labels: ours } }); // cleanup fails: stays demoted
      const cleanup = "kata-deploy-cleanup";
      const violations: string[] = [];
      const stopWatching = watchStore(sim, () => {
        for (const node of nodes) {
          const job = jobOf(sim, cleanup, node);
          const mark = labelsOf(sim, node)[BLUE];
          if (job && mark === "true") violations.push(`${node}: cleanup Job before the demotion`);
          if (mark === undefined && !jobComplete(job))
            violations.push(`${node}: released before its Job succeeded`);
        }
      });
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(
        options(template, { nodes, namePrefix: cleanup, removeNodeLabel: true, multiInstallSuffix: "blue" }),
        { kubeConfig, ...quiet, nodeWorkTiming: FAST_NODE_WORK },
      );
      stopWatching();
      assert.deepEqual(violations, []);
      assert.equal(doc.exitCode, 1, "w-3's cleanup failed");
      assert.deepEqual(pick(labelsOf(sim, "w-0")), {});
      assert.deepEqual(pick(labelsOf(sim, "w-1")), { [SHARED]: "true", [RED]: "true" });
      assert.deepEqual(pick(labelsOf(sim, "w-2")), { [SHARED]: "false", [RED]: "false" });
      assert.deepEqual(pick(labelsOf(sim, "w-3")), { [SHARED]: "false", [BLUE]: "false" });
    });
  });

  it("names the node-work flag in its usage errors", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const template = writeTemplate(installTemplate());
      const cases: [Partial<DispatcherOptions>, RegExp][] = [
        [{ nodeLabelKey: "bad key" }, /--node-label-key "bad key" is not valid/],
        [{ nodeLabel: "not ok!" }, /--node-label "not ok!" is not valid/],
        [{ nodeLabel: "" }, /--node-label "" is not valid: must not be empty/],
        [{ nodeLabelPendingValue: "no way" }, /--node-label-pending-value "no way" is not valid/],
        [
          { nodeLabel: "x", nodeLabelPendingValue: "x" },
          /--node-label and --node-label-pending-value are both "x"/,
        ],
        [{ instanceLabelPrefix: "Under_Score" }, /--instance-label-prefix "Under_Score" is not valid/],
        [{ multiInstallSuffix: "a/b" }, /--multi-install-suffix "a\/b" is not valid/],
        [{ requireNodeHandlers: ["Kata_QEMU"] }, /--require-node-handlers "Kata_QEMU" is not valid/],
      ];
      for (const [extra, message] of cases) {
        const bad = await runDispatcher(options(template, extra), { kubeConfig, ...quiet });
        assert.equal(bad.exitCode, 2, JSON.stringify(extra));
        assert.match(bad.error ?? "", message);
      }
      assert.equal(sim.audit.requestCounts()["create jobs"] ?? 0, 0);
    });
  });

  it("checks node facts before the Job, then Ready and handlers before labelling, and lifts start-up taints after", async () => {
    const startup = { key: "katacontainers.io/starting", effect: "NoSchedule" as const };
    const keepMe = { key: "keep-me", value: "x", effect: "PreferNoSchedule" as const };
    const nodes = ["c-0", "c-1", "c-2", "c-3", "c-4", "c-5"];
    const extra: FleetNode[] = [
      { ...worker("c-0"), taints: [startup, keepMe] }, // serves kata-qemu: labelled, start-up taint lifted
      worker("c-1"), // serves only runc: HandlersNotServed
      { ...worker("c-2"), taints: [startup] }, // reports no handlers: passes
      { ...worker("c-3"), containerRuntimeVersion: "" }, // NodeFactsMissing, no Job
      { ...worker("c-4"), machineID: "" }, // NodeFactsMissing, no Job
      worker("c-5"), // not Ready after its Job: NodeNotReady
    ];
    await withSim({ fleet: fleet(extra) }, async (sim) => {
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const handlers = (node: string, names: string[]) =>
        sim.patch("nodes", undefined, node, { status: { runtimeHandlers: names.map((name) => ({ name })) } });
      handlers("c-0", ["runc", "kata-qemu"]);
      handlers("c-1", ["runc"]);
      handlers("c-5", ["kata-qemu"]);
      // c-5's node goes NotReady the moment its Job completes (a CRI restart that does not come back).
      const notReady = sim
        .waitFor(() => jobComplete(jobOf(sim, PREFIX, "c-5")), 120_000)
        .then(() => {
          const conditions = (
            sim.get("nodes", undefined, "c-5")?.status as { conditions: { type: string; status: string }[] }
          ).conditions.map((c) =>
            c.type === "Ready" ? { ...c, status: "False", reason: "KubeletNotReady" } : c,
          );
          sim.patch("nodes", undefined, "c-5", { status: { conditions } });
        });
      const tolerations = `\n      - {key: ${startup.key}, operator: Exists, effect: NoSchedule}`;
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000, tolerations }));
      const doc = await runDispatcher(
        options(template, {
          nodes,
          nodeLabel: "true",
          requireNodeHandlers: ["kata-qemu", "kata-clh"],
          waitNodeReadySecs: 1,
          removeNodeTaints: [{ key: startup.key }],
          requireNodeRuntimeVersion: true,
          requireNodeMachineId: true,
        }),
        { kubeConfig, ...quiet, nodeWorkTiming: FAST_NODE_WORK },
      );
      await notReady;
      const byNode = new Map(doc.nodes.map((n) => [n.node, n]));
      assert.deepEqual(
        nodes.map((n) => [n, byNode.get(n)?.outcome, byNode.get(n)?.reason]),
        [
          ["c-0", "succeeded", undefined],
          ["c-1", "failed", "HandlersNotServed"],
          ["c-2", "succeeded", undefined],
          ["c-3", "failed", "NodeFactsMissing"],
          ["c-4", "failed", "NodeFactsMissing"],
          ["c-5", "failed", "NodeNotReady"],
        ],
      );
      assert.match(
        byNode.get("c-3")?.message ?? "",
        /containerRuntimeVersion \(--require-node-runtime-version\)/,
      );
      assert.match(byNode.get("c-4")?.message ?? "", /machineID \(--require-node-machine-id\)/);
      // Ground truth: Jobs only where the facts were reported; labels only where every check passed.
      assert.deepEqual([...jobsPerNode(sim).keys()].filter((n) => n.startsWith("c-")).sort(), [
        "c-0",
        "c-1",
        "c-2",
        "c-5",
      ]);
      for (const node of nodes) {
        assert.equal(labelsOf(sim, node)[SHARED], ["c-0", "c-2"].includes(node) ? "true" : undefined, node);
      }
      // The failures are recorded on the nodes as 0.3 does.
      assert.equal(labelsOf(sim, "c-1")["kata-deploy-job-dispatcher/result"], "failed");
      const taintsOf = (node: string) =>
        (sim.get("nodes", undefined, node)?.spec as { taints?: unknown[] }).taints;
      assert.deepEqual(taintsOf("c-0"), [keepMe]);
      assert.deepEqual(taintsOf("c-2"), []);
      // The facts reach every container under both machine-ID names (kata-deploy 4.1 and 4.2 images).
      const job = jobOf(sim, PREFIX, "c-0") as KubeObject;
      const pod = (
        job.spec as {
          template: { spec: Record<string, { name: string; env?: { name: string; value: string }[] }[]> };
        }
      ).template.spec;
      for (const container of [...pod.initContainers, ...pod.containers]) {
        const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
        assert.deepEqual(
          [env.CONTAINER_RUNTIME_VERSION, env.NODE_MACHINE_ID, env.KATA_DEPLOY_NODE_MACHINE_ID],
          ["containerd://2.1.5", "c-0", "c-0"],
          container.name,
        );
      }

      const bad = await runDispatcher(options(template, { removeNodeTaints: [{ key: startup.key }] }), {
        kubeConfig,
        ...quiet,
      });
      assert.equal(bad.exitCode, 2);
      assert.match(bad.error ?? "", /--remove-node-taints needs --node-label/);
    });
  });

  it("--cleanup-job-template cleans nodes this install marks but no longer selects, first; a failure there stops the install", async () => {
    const pool = (name: string, p: string): FleetNode => worker(name, undefined, { pool: p });
    const extra = [pool("p-0", "a"), pool("p-1", "a"), pool("p-2", "b"), pool("p-3", "b"), pool("p-4", "a")];
    await withSim({ fleet: fleet(extra) }, async (sim) => {
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      for (const node of ["p-0", "p-2", "p-3"])
        sim.patch("nodes", undefined, node, { metadata: { labels: { [SHARED]: "true", [BLUE]: "true" } } });
      // p-4 is selected and tainted (not admitted): still this install's, so never cleaned.
      sim.patch("nodes", undefined, "p-4", {
        metadata: { labels: { [SHARED]: "true", [BLUE]: "true" } },
        spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] },
      });
      const owner = await runningOwnerJob(sim, OWNER_JOB);
      const install = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const cleanupTemplate = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const run = (extraOptions: Partial<DispatcherOptions>) =>
        runDispatcher(
          options(install, {
            nodes: undefined,
            nodeSelectors: ["pool=a"],
            ownerJobName: OWNER_JOB,
            cleanupJobTemplate: cleanupTemplate,
            nodeLabel: "true",
            claimNodePending: true,
            multiInstallSuffix: "blue",
            ...extraOptions,
          }),
          { kubeConfig, ...quiet, nodeWorkTiming: FAST_NODE_WORK },
        );
      // First: p-3's cleanup fails, so nothing is installed.
      sim.setOutcome("p-3", { kind: "fail" });
      const failed = await run({});
      assert.equal(failed.exitCode, 1);
      assert.match(
        failed.error ?? "",
        /cleanup of node\(s\) no longer selected failed \(p-3\); the install pass did not run/,
      );
      assert.equal(jobsPerNode(sim, PREFIX).size, 0, "no install Job after a failed cleanup");
      const removedOwner = `${PREFIX}-removed`;
      assert.deepEqual([...jobsPerNode(sim, removedOwner).keys()].sort(), ["p-2", "p-3"]);
      assert.deepEqual(pick(labelsOf(sim, "p-2")), {}, "p-2 released");
      assert.deepEqual(
        pick(labelsOf(sim, "p-3")),
        { [SHARED]: "false", [BLUE]: "false" },
        "p-3 demoted, kept",
      );

      // Then p-3 cleans up, and the install covers pool a (p-4 stays tainted and skipped) after the cleanup ended.
      // (A new release's dispatcher Job: the first one's Jobs are an earlier run's, replaced, not adopted.)
      sim.setOutcome("p-3", { kind: "succeed" });
      const second = await runningOwnerJob(sim, `${OWNER_JOB}-2`);
      const doc = await run({ ownerJobName: `${OWNER_JOB}-2` });
      assert.equal(doc.exitCode, 0, doc.error);
      assert.deepEqual(
        doc.removed?.nodes.map((n) => [n.node, n.outcome]),
        [["p-3", "succeeded"]],
      );
      assert.deepEqual(pick(labelsOf(sim, "p-3")), {});
      const installs = jobsPerNode(sim, PREFIX);
      assert.deepEqual([...installs.keys()].sort(), ["p-0", "p-1"]);
      const truth = sim.audit.jobsByNode();
      const cleanedAt = Math.max(
        ...["p-2", "p-3"]
          .flatMap((n) => truth[n].jobs.filter((j) => j.owner === removedOwner))
          .map((j) => j.finishedAt ?? Infinity),
      );
      const firstInstall = Math.min(
        ...["p-0", "p-1"]
          .flatMap((n) => truth[n].jobs.filter((j) => j.owner === PREFIX))
          .map((j) => j.createdAt),
      );
      assert.ok(cleanedAt <= firstInstall, "every cleanup ended before the first install Job");
      assert.equal(labelsOf(sim, "p-4")[BLUE], "true", "a selected, tainted node is not cleaned");
      // Both passes' Jobs belong to the dispatcher's Job.
      const removedJobs = sim.list("jobs", {
        namespace: NS,
        labelSelector: `kata-deploy-job-dispatcher/owner=${removedOwner}`,
      });
      assert.deepEqual(
        removedJobs.map((j) => j.metadata.ownerReferences?.[0]?.uid),
        removedJobs.map(() => second.uid),
      );
      assert.notEqual(owner.uid, second.uid);

      const bad = await run({
        ownerJobName: `${OWNER_JOB}-2`,
        cleanupJobTemplate: "/nonexistent/cleanup.yaml",
      });
      assert.equal(bad.exitCode, 2);
      assert.match(bad.error ?? "", /--cleanup-job-template \/nonexistent\/cleanup.yaml: ENOENT/);
    });
  });

  it("--kubelet-timeout-warn-secs is advisory: a kubelet that cannot be read is a warning, never a failure", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      const lines: string[] = [];
      const logger = { log: (level: string, message: string) => lines.push(`${level} ${message}`) };
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(options(template, { kubeletTimeoutWarnSecs: 600 }), {
        kubeConfig: kubeConfigOf(sim.kubeconfigPath),
        ...quiet,
        logger,
      });
      assert.equal(doc.exitCode, 0, doc.error);
      assert.equal(doc.counts.succeeded, WORKERS.length);
      // kube-sim does not serve nodes/proxy: each node's probe was refused, and said so.
      const warned = lines.filter((l) => /^warn node w-\d: cannot read the kubelet's configz/.test(l));
      assert.equal(warned.length, WORKERS.length, lines.join("\n"));
      assertCoveredExactlyOnce(sim, WORKERS);
    });
  });

  it("--node-label-pending-value is what a claimed node carries until its labels say the --node-label value", async () => {
    await withSim({ fleet: fleet() }, async (sim) => {
      sim.setOutcome("w-1", { kind: "fail" });
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const doc = await runDispatcher(
        options(template, {
          nodes: ["w-0", "w-1"],
          nodeLabel: "true",
          claimNodePending: true,
          multiInstallSuffix: "blue",
          nodeLabelPendingValue: "pending",
        }),
        { kubeConfig: kubeConfigOf(sim.kubeconfigPath), ...quiet, nodeWorkTiming: FAST_NODE_WORK },
      );
      assert.equal(doc.exitCode, 1, "w-1's Job failed");
      assert.deepEqual(pick(labelsOf(sim, "w-0")), { [SHARED]: "true", [BLUE]: "true" });
      assert.deepEqual(pick(labelsOf(sim, "w-1")), { [SHARED]: "pending", [BLUE]: "pending" });
    });
  });
});
