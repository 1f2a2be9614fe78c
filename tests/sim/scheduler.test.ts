// The scheduler binds pods that name no node (the dispatcher's own pod) to a node that fits, and explains
// a pod that fits nowhere the way kube-scheduler does (PodScheduled=False/Unschedulable).
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import type { FleetNode } from "../../sim";
import { Clients, startWithClients } from "./helpers";

const fleet: FleetNode[] = [
  {
    name: "cp-1",
    labels: { "node-role.kubernetes.io/control-plane": "" },
    taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
  },
  { name: "gpu-1", taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] },
  { name: "down-1", ready: false },
  { name: "cordoned-1", unschedulable: true },
  { name: "w-1", labels: { pool: "kata" } },
];

function job(name: string, podSpec: Partial<k8s.V1PodSpec>): k8s.V1Job {
  return {
    metadata: { name },
    spec: {
      backoffLimit: 0,
      template: {
        spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }], ...podSpec },
      },
    },
  };
}

describe("kube-sim scheduler", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ fleet: { nodes: fleet }, timeScale: 1000, jobDurationMs: 2000 });
  });
  after(() => c.sim.close());

  const podsOf = (jobName: string) =>
    c.sim.list("pods", { namespace: "default", labelSelector: `batch.kubernetes.io/job-name=${jobName}` });

  it("binds an unpinned Job pod to the one node that fits, and the Job completes there", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: job("anywhere", {}) });
    await c.sim.waitFor(() => podsOf("anywhere").some((p) => p.spec?.nodeName), 5000);
    assert.deepEqual(
      podsOf("anywhere").map((p) => p.spec?.nodeName),
      ["w-1"],
    );
    const done = () =>
      ((c.sim.get("jobs", "default", "anywhere")?.status?.conditions as { type: string }[]) ?? []).some(
        (x) => x.type === "Complete",
      );
    await c.sim.waitFor(done, 10_000);
  });

  it("honours tolerations and the node selector", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: job("on-control-plane", {
        nodeSelector: { "node-role.kubernetes.io/control-plane": "" },
        tolerations: [
          { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
        ],
      }),
    });
    await c.sim.waitFor(() => podsOf("on-control-plane").some((p) => p.spec?.nodeName), 5000);
    assert.equal(podsOf("on-control-plane")[0].spec?.nodeName, "cp-1");
  });

  it("leaves a pod that fits nowhere Pending with the scheduler's reasons, and binds it once a node fits", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: job("nowhere", { nodeSelector: { pool: "gpu" } }),
    });
    const unschedulable = () =>
      podsOf("nowhere").find((p) =>
        ((p.status?.conditions as { type: string; status: string }[]) ?? []).some(
          (x) => x.type === "PodScheduled" && x.status === "False",
        ),
      );
    await c.sim.waitFor(() => unschedulable() !== undefined, 5000);
    const condition = (
      unschedulable()?.status?.conditions as { type: string; reason?: string; message?: string }[]
    ).find((x) => x.type === "PodScheduled");
    assert.equal(condition?.reason, "Unschedulable");
    assert.match(condition?.message ?? "", /^0\/5 nodes are available: /);
    assert.match(condition?.message ?? "", /1 node\(s\) were not ready/);
    assert.match(condition?.message ?? "", /1 node\(s\) had untolerated taint \{dedicated: gpu\}/);
    assert.match(condition?.message ?? "", /node\(s\) didn't match Pod's node affinity\/selector/);
    assert.equal(podsOf("nowhere")[0].spec?.nodeName, undefined);

    c.sim.patch("nodes", undefined, "w-1", { metadata: { labels: { pool: "gpu" } } });
    await c.sim.waitFor(() => podsOf("nowhere").some((p) => p.spec?.nodeName === "w-1"), 5000);
  });
});
