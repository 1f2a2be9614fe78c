// The hook runner against kube-sim: a phase's hooks created, awaited and deleted in Helm's order, as the simulator's
// audit log records the requests. The hooks are Helm's own render of chart 4.0.0 (tests/chart/fixtures).
import assert from "node:assert/strict";
import { splitHooks, type HookObject } from "../../kube/helmHooks";
import { runHookPhase, kubeHookCluster } from "../../rollout/hookRunner";
import { KubeClient } from "../../rollout/kubeClient";
import { rolloutProvider } from "../../rollout/provider";
import type { RolloutOutputs } from "../../rollout/types";
import { startSimulator, type RunningSimulator } from "../../sim";
import { helmObjects } from "../chart/fixtures/objects";
import { RELEASE, deployRelease } from "./simHarness";

const NS = "kube-system"; // the fixtures' release namespace

/**
 * Deletes of the given names and creates of the given resources, in the order the simulator received them. A create
 * request names no object in the log (the name is in its body); `created` tells which objects were created.
 */
function writes(sim: RunningSimulator, names: readonly string[], resources: readonly string[]): string[] {
  return sim.audit
    .requests()
    .filter(
      (r) =>
        (r.verb === "delete" && names.includes(r.name ?? "")) ||
        (r.verb === "create" && resources.includes(r.resource)),
    )
    .map((r) => (r.verb === "create" ? `create ${r.resource}` : `delete ${r.resource}/${r.name}`));
}

/** Names of the objects of a resource created, in creation order (the store's transitions). */
function created(sim: RunningSimulator, resource: string, names: readonly string[]): string[] {
  return sim.audit
    .transitions(resource)
    .filter((t) => t.kind === "created" && names.includes(t.name))
    .map((t) => t.name);
}

describe("rollout/hookRunner: a phase of Helm hooks against kube-sim", function () {
  this.timeout(300_000);
  let sim: RunningSimulator;
  let client: KubeClient;
  const log: string[] = [];
  before(async () => {
    sim = await startSimulator({ nodes: 2, seed: 3, timeScale: 600, jobDurationMs: 30_000 });
    client = new KubeClient({ server: sim.url, caData: sim.caPem, token: sim.adminToken });
  });
  after(async () => {
    client?.close();
    await sim?.close();
  });

  it("post-delete of chart 4.0.0: RBAC (weight -5, by name), then the Job; an old Job deleted first; all deleted after success in reverse", async () => {
    const { hooks } = splitHooks(helmObjects("4.0.0", "job-defaults") as HookObject[]);
    // A Job of that name left from an earlier run: before-hook-creation deletes it before the new one is created.
    sim.create("jobs", {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "kata-deploy-rb-cleanup", namespace: NS },
      spec: {
        template: {
          spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }] },
        },
      },
    });
    const result = await runHookPhase("post-delete", hooks, kubeHookCluster(client, NS), {
      deadline: Date.now() + 120_000,
      log: (l) => log.push(l),
    });
    assert.equal(result.failed, undefined);
    assert.deepEqual(result.ran, [
      "ClusterRoleBinding/kata-deploy-cleanup-rb",
      "ClusterRole/kata-deploy-cleanup-role",
      "ServiceAccount/kata-deploy-sa-cleanup",
      "Job/kata-deploy-rb-cleanup",
    ]);
    const names = [
      "kata-deploy-cleanup-rb",
      "kata-deploy-cleanup-role",
      "kata-deploy-sa-cleanup",
      "kata-deploy-rb-cleanup",
    ];
    // Ground truth: the simulator's request log.
    const kinds = ["clusterrolebindings", "clusterroles", "serviceaccounts", "jobs"];
    assert.deepEqual(writes(sim, names, kinds), [
      "delete clusterrolebindings/kata-deploy-cleanup-rb",
      "create clusterrolebindings",
      "delete clusterroles/kata-deploy-cleanup-role",
      "create clusterroles",
      "delete serviceaccounts/kata-deploy-sa-cleanup",
      "create serviceaccounts",
      "delete jobs/kata-deploy-rb-cleanup",
      "create jobs",
      // hook-succeeded, in reverse run order
      "delete jobs/kata-deploy-rb-cleanup",
      "delete serviceaccounts/kata-deploy-sa-cleanup",
      "delete clusterroles/kata-deploy-cleanup-role",
      "delete clusterrolebindings/kata-deploy-cleanup-rb",
    ]);
    // The Job ran to completion before the deletions: its Complete transition precedes its last delete.
    const jobTransitions = sim.audit
      .transitions("jobs")
      .filter((t) => t.name === "kata-deploy-rb-cleanup")
      .map((t) => t.kind);
    assert.ok(jobTransitions.includes("jobComplete"), jobTransitions.join(","));
    assert.equal(jobTransitions[jobTransitions.length - 1], "deleted");
    for (const [resource, name, ns] of [
      ["clusterrolebindings", "kata-deploy-cleanup-rb", undefined],
      ["clusterroles", "kata-deploy-cleanup-role", undefined],
      ["serviceaccounts", "kata-deploy-sa-cleanup", NS],
      ["jobs", "kata-deploy-rb-cleanup", NS],
    ] as const)
      assert.equal(sim.get(resource, ns, name), undefined, `${resource}/${name} deleted by hook-succeeded`);
  });

  it("a failing Job stops the phase: hook-failed deletes it, earlier hook-succeeded ones go, later ones never run", async () => {
    const job = (name: string, weight: string, policy: string): HookObject => ({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: {
        name,
        namespace: NS,
        annotations: {
          "helm.sh/hook": "pre-delete",
          "helm.sh/hook-weight": weight,
          "helm.sh/hook-delete-policy": policy,
        },
      },
      spec: {
        backoffLimit: 0,
        template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }] } },
      },
    });
    const config: HookObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "hook-kept",
        namespace: NS,
        annotations: { "helm.sh/hook": "pre-delete", "helm.sh/hook-weight": "-1" },
      },
      data: { a: "b" },
    };
    sim.audit.reset();
    const { hooks } = splitHooks([
      job("late", "9", "hook-succeeded"),
      job("breaks", "1", "hook-failed"),
      job("first", "0", "hook-succeeded"),
      config,
    ]);
    // Pods succeed until "breaks" is created; from then on they fail.
    for (const n of sim.list("nodes", {}))
      sim.setOutcome(String(n.metadata.name), { kind: "succeed", durationMs: 1_000 });
    const cluster = kubeHookCluster(client, NS);
    const failAfterFirst = {
      ...cluster,
      async create(o: HookObject) {
        if (o.metadata?.name === "breaks")
          for (const n of sim.list("nodes", {}))
            sim.setOutcome(String(n.metadata.name), { kind: "fail", durationMs: 1_000 });
        await cluster.create(o);
      },
    };
    const result = await runHookPhase("pre-delete", hooks, failAfterFirst, {
      deadline: Date.now() + 120_000,
      log: (l) => log.push(l),
    });
    assert.deepEqual(result.ran, ["ConfigMap/hook-kept", "Job/first", "Job/breaks"]);
    assert.equal(result.failed?.hook, "Job/breaks");
    assert.match(result.failed?.message ?? "", /job failed: BackoffLimitExceeded/);
    assert.deepEqual(result.deleted, ["Job/breaks", "Job/first"]);
    assert.deepEqual(writes(sim, ["hook-kept", "first", "breaks", "late"], ["configmaps", "jobs"]), [
      "delete configmaps/hook-kept",
      "create configmaps",
      // "first" and "breaks" have no before-hook-creation: created without a delete first
      "create jobs",
      "create jobs",
      "delete jobs/breaks",
      "delete jobs/first",
    ]);
    assert.deepEqual(created(sim, "jobs", ["first", "breaks", "late"]), ["first", "breaks"]);
    assert.ok(
      sim.get("configmaps", NS, "hook-kept"),
      "a ConfigMap with the default policy stays after the phase",
    );
    assert.equal(sim.get("jobs", NS, "late"), undefined, "a hook after the failed one never runs");
  });
});

describe("rollout: the release hooks' side on destroy (post-delete, then the kept objects)", function () {
  this.timeout(300_000);
  let sim: RunningSimulator;
  before(async () => {
    process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";
    sim = await startSimulator({ nodes: 2, seed: 4, timeScale: 600, jobDurationMs: 30_000 });
  });
  after(async () => sim?.close());

  it("a failing post-delete hook fails the destroy and keeps the kept objects; the next destroy removes them", async () => {
    const { inputs, applied } = await deployRelease(sim, { values: { deploymentMode: "daemonset" } });
    const props: RolloutOutputs = {
      ...inputs,
      chartSide: "before",
      results: "",
      summary: { total: 0, succeeded: 0, failed: 0, skipped: 0, durationSeconds: 0 },
      runId: "",
      lastRunKey: inputs.runKey,
    };
    const kept = applied.filter((o) => o.metadata.annotations?.["helm.sh/resource-policy"] === "keep");
    assert.equal(kept.length, 3);
    // Pulumi has deleted the chart's other objects (the DaemonSet), retaining the kept ones.
    for (const o of applied)
      if (!kept.includes(o)) sim.delete(resourceOf(o.kind), o.metadata.namespace, String(o.metadata.name));
    for (const n of sim.list("nodes", {}))
      sim.setOutcome(String(n.metadata.name), { kind: "fail", durationMs: 1_000 });
    await assert.rejects(
      rolloutProvider.delete("id", props),
      /post-delete hook Job\/kata-deploy-rb-cleanup failed: job failed: BackoffLimitExceeded.*kept objects \(ServiceAccount\/kata-deploy-sa, ClusterRole\/kata-deploy-role, ClusterRoleBinding\/kata-deploy-rb\) stay/,
    );
    for (const o of kept)
      assert.ok(sim.get(resourceOf(o.kind), o.metadata.namespace, String(o.metadata.name)), `${o.kind} kept`);

    for (const n of sim.list("nodes", {}))
      sim.setOutcome(String(n.metadata.name), { kind: "succeed", durationMs: 1_000 });
    await rolloutProvider.delete("id", props);
    for (const o of kept)
      assert.equal(sim.get(resourceOf(o.kind), o.metadata.namespace, String(o.metadata.name)), undefined);
    assert.equal(sim.get("jobs", RELEASE.namespace, "kata-deploy-rb-cleanup"), undefined, "hook-succeeded");
  });
});

function resourceOf(kind: string): "serviceaccounts" | "clusterroles" | "clusterrolebindings" | "daemonsets" {
  const map = {
    ServiceAccount: "serviceaccounts",
    ClusterRole: "clusterroles",
    ClusterRoleBinding: "clusterrolebindings",
    DaemonSet: "daemonsets",
  } as const;
  const r = (map as Record<string, (typeof map)[keyof typeof map]>)[kind];
  if (!r) throw new Error(`unexpected kind ${kind}`);
  return r;
}
