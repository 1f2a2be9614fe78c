// The DaemonSet controller: placement by node selector, taints and automatic tolerations, per-node
// readiness, and status counters (kubernetes-api-facts.md §7).
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import type { FleetNode } from "../../sim";
import { Clients, startWithClients } from "./helpers";

const fleet: FleetNode[] = [
  { name: "w-1" },
  { name: "w-2" },
  {
    name: "cp-1",
    labels: { "node-role.kubernetes.io/control-plane": "" },
    taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
  },
  { name: "gpu-1", taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] },
  {
    name: "cordoned-1",
    unschedulable: true,
    taints: [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }],
  },
  { name: "arm-1", architecture: "arm64" },
  {
    name: "crash-1",
    outcome: { kind: "fail", durationMs: 2000, failure: { message: "kata-deploy: install failed" } },
  },
  { name: "noexec-1", taints: [{ key: "maintenance", effect: "NoExecute" }] },
];

describe("kube-sim DaemonSet controller", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ fleet: { nodes: fleet }, timeScale: 1000, jobDurationMs: 5000 });
  });
  after(() => c.sim.close());

  const daemonPods = () =>
    c.sim.list("pods", { namespace: "kube-system", labelSelector: "name=kata-deploy" });
  const nodeOf = (p: { spec?: Record<string, unknown> }) => p.spec?.nodeName as string;

  it("runs one pod per eligible node and reports readiness per node", async () => {
    await c.apps.createNamespacedDaemonSet({
      namespace: "kube-system",
      body: {
        metadata: { name: "kata-deploy" },
        spec: {
          selector: { matchLabels: { name: "kata-deploy" } },
          template: {
            metadata: { labels: { name: "kata-deploy" } },
            spec: {
              nodeSelector: { "kubernetes.io/arch": "amd64" },
              containers: [{ name: "kube-kata", image: "kata-deploy:3.x" }],
            },
          },
        },
      },
    });
    const eligible = ["cordoned-1", "crash-1", "w-1", "w-2"];
    await c.sim.waitFor(() => {
      const ds = c.sim.get("daemonsets", "kube-system", "kata-deploy");
      return ds?.status?.numberReady === 3 && ds?.status?.desiredNumberScheduled === 4;
    }, 10_000);
    assert.deepEqual(daemonPods().map(nodeOf).sort(), eligible);
    const ds = await c.apps.readNamespacedDaemonSet({ name: "kata-deploy", namespace: "kube-system" });
    assert.equal(ds.status?.desiredNumberScheduled, 4);
    assert.equal(ds.status?.currentNumberScheduled, 4);
    assert.equal(ds.status?.numberReady, 3);
    assert.equal(ds.status?.numberAvailable, 3);
    assert.equal(ds.status?.numberUnavailable, 1);
    assert.equal(ds.status?.numberMisscheduled, 0);
    assert.equal(ds.status?.observedGeneration, 1);
    const pods = (
      await c.core.listNamespacedPod({ namespace: "kube-system", labelSelector: "name=kata-deploy" })
    ).items;
    const byNode = new Map(pods.map((p) => [p.spec?.nodeName, p]));
    for (const n of ["w-1", "w-2", "cordoned-1"]) {
      assert.equal(byNode.get(n)?.status?.conditions?.find((x) => x.type === "Ready")?.status, "True", n);
    }
    const crash = byNode.get("crash-1") as k8s.V1Pod;
    assert.equal(crash.status?.conditions?.find((x) => x.type === "Ready")?.status, "False");
    const cs = crash.status?.containerStatuses?.[0];
    await c.sim.waitFor(() => {
      const p = c.sim.get("pods", "kube-system", crash.metadata!.name!);
      const st = (p?.status?.containerStatuses as { restartCount: number }[] | undefined)?.[0];
      return (st?.restartCount ?? 0) >= 1;
    }, 5000);
    const crashed = await c.core.readNamespacedPod({ name: crash.metadata!.name!, namespace: "kube-system" });
    const st = crashed.status?.containerStatuses?.[0];
    assert.ok(cs);
    assert.equal(st?.lastState?.terminated?.message, "kata-deploy: install failed");
    assert.ok((st?.restartCount ?? 0) >= 1);
    // Automatic daemon tolerations and the per-node affinity the controller sets.
    const w1 = byNode.get("w-1") as k8s.V1Pod;
    const keys = (w1.spec?.tolerations ?? []).map((t) => `${t.key}:${t.effect}`);
    for (const k of [
      "node.kubernetes.io/not-ready:NoExecute",
      "node.kubernetes.io/unreachable:NoExecute",
      "node.kubernetes.io/unschedulable:NoSchedule",
      "node.kubernetes.io/disk-pressure:NoSchedule",
    ]) {
      assert.ok(keys.includes(k), `missing toleration ${k}`);
    }
    const term =
      w1.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0];
    assert.deepEqual(
      term?.matchFields?.map((f) => ({ ...f })),
      [{ key: "metadata.name", operator: "In", values: ["w-1"] }],
    );
    assert.equal(w1.metadata?.ownerReferences?.[0]?.kind, "DaemonSet");
  });

  it("follows node changes: new nodes get a pod, NoExecute taints evict it, NoSchedule taints do not", async () => {
    c.sim.create("nodes", {
      metadata: { name: "w-3", labels: { "kubernetes.io/arch": "amd64" } },
      status: { conditions: [{ type: "Ready", status: "True" }] },
    });
    await c.sim.waitFor(() => daemonPods().some((p) => nodeOf(p) === "w-3"), 5000);
    c.sim.patch("nodes", undefined, "w-1", { spec: { taints: [{ key: "soft", effect: "NoSchedule" }] } });
    c.sim.patch("nodes", undefined, "w-2", { spec: { taints: [{ key: "hard", effect: "NoExecute" }] } });
    await c.sim.waitFor(() => !daemonPods().some((p) => nodeOf(p) === "w-2"), 5000);
    await c.sim.waitFor(() => {
      const ds = c.sim.get("daemonsets", "kube-system", "kata-deploy");
      return ds?.status?.desiredNumberScheduled === 3 && ds?.status?.numberMisscheduled === 1;
    }, 5000);
    assert.ok(
      daemonPods().some((p) => nodeOf(p) === "w-1"),
      "a NoSchedule taint does not evict the running pod",
    );
  });

  it("honours required node affinity (matchExpressions) in the template", async () => {
    await c.apps.createNamespacedDaemonSet({
      namespace: "kube-system",
      body: {
        metadata: { name: "arm-only" },
        spec: {
          selector: { matchLabels: { name: "arm-only" } },
          template: {
            metadata: { labels: { name: "arm-only" } },
            spec: {
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [
                      {
                        matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["arm64"] }],
                      },
                    ],
                  },
                },
              },
              containers: [{ name: "a", image: "a" }],
            },
          },
        },
      },
    });
    await c.sim.waitFor(
      () => c.sim.get("daemonsets", "kube-system", "arm-only")?.status?.numberReady === 1,
      5000,
    );
    const nodes = c.sim
      .list("pods", { namespace: "kube-system", labelSelector: "name=arm-only" })
      .map(nodeOf);
    assert.deepEqual(nodes, ["arm-1"]);
    const ds = await c.apps.readNamespacedDaemonSet({ name: "arm-only", namespace: "kube-system" });
    assert.equal(ds.status?.desiredNumberScheduled, 1);
  });

  it("places pods on tainted nodes only when the template tolerates the taint", async () => {
    await c.apps.createNamespacedDaemonSet({
      namespace: "kube-system",
      body: {
        metadata: { name: "gpu-agent" },
        spec: {
          selector: { matchLabels: { name: "gpu-agent" } },
          template: {
            metadata: { labels: { name: "gpu-agent" } },
            spec: {
              tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }],
              containers: [{ name: "a", image: "a" }],
            },
          },
        },
      },
    });
    await c.sim.waitFor(
      () => (c.sim.get("daemonsets", "kube-system", "gpu-agent")?.status?.numberReady as number) >= 1,
      5000,
    );
    const nodes = c.sim
      .list("pods", { namespace: "kube-system", labelSelector: "name=gpu-agent" })
      .map(nodeOf);
    assert.ok(nodes.includes("gpu-1"));
    assert.ok(!nodes.includes("cp-1") && !nodes.includes("noexec-1"));
  });

  it("rolls a template change out one node at a time, counting as updated only pods of the new revision", async () => {
    const sim = (await startWithClients({ nodes: 4, seed: 8, timeScale: 1000, jobDurationMs: 5000 })).sim;
    try {
      const labels = { name: "agent" };
      const template = (image: string) => ({
        metadata: { labels },
        spec: { containers: [{ name: "agent", image }] },
      });
      sim.create("daemonsets", {
        metadata: { name: "agent", namespace: "default" },
        spec: { selector: { matchLabels: labels }, template: template("agent:1") },
      });
      const ds = () => sim.get("daemonsets", "default", "agent");
      const pods = () => sim.list("pods", { namespace: "default", labelSelector: "name=agent" });
      await sim.waitFor(() => ds()?.status?.numberReady === 4 && ds()?.status?.updatedNumberScheduled === 4);
      const first = pods()[0].metadata.labels?.["controller-revision-hash"];
      sim.patch("daemonsets", "default", "agent", { spec: { template: template("agent:2") } });
      let maxUnavailable = 0;
      let minUpdated = 4;
      await sim.waitFor(() => {
        const d = ds();
        if (d?.status?.observedGeneration === 2)
          minUpdated = Math.min(minUpdated, Number(d.status.updatedNumberScheduled));
        const live = pods().filter((p) => !p.metadata.deletionTimestamp);
        const readyNew = live.filter(
          (p) =>
            p.metadata.labels?.["controller-revision-hash"] !== first &&
            (p.status?.conditions as { type: string; status: string }[] | undefined)?.some(
              (c) => c.type === "Ready" && c.status === "True",
            ),
        );
        const readyAny = live.filter((p) =>
          (p.status?.conditions as { type: string; status: string }[] | undefined)?.some(
            (c) => c.type === "Ready" && c.status === "True",
          ),
        );
        maxUnavailable = Math.max(maxUnavailable, 4 - readyAny.length);
        return readyNew.length === 4 && d?.status?.updatedNumberScheduled === 4;
      }, 15_000);
      assert.ok(minUpdated < 4, `updatedNumberScheduled stayed at 4 during the rollout (min ${minUpdated})`);
      assert.ok(maxUnavailable <= 1, `${maxUnavailable} pods unavailable at once; maxUnavailable is 1`);
      const revisions = sim
        .list("controllerrevisions", { namespace: "default" })
        .map((r) => ({ revision: r.revision, hash: r.metadata.labels?.["controller-revision-hash"] }))
        .sort((a, b) => Number(a.revision) - Number(b.revision));
      assert.deepEqual(
        revisions.map((r) => r.revision),
        [1, 2],
      );
      assert.equal(revisions[0].hash, first);
      assert.ok(pods().every((p) => p.metadata.labels?.["controller-revision-hash"] === revisions[1].hash));
      assert.ok(pods().every((p) => p.metadata.labels?.["pod-template-generation"] === "2"));
    } finally {
      await sim.close();
    }
  });
});
