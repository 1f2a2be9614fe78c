// The published chart 4.0.0 grants the dispatcher Role only jobs create/get/delete. Against the simulator's RBAC
// (ground truth: its authorizer and audit log), the bundled dispatcher fails with that alone and succeeds once the
// component's extra Role (dispatcherPodReaderRole, created here exactly as rendered) is bound as well.
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { dispatcherPodReaderRole, dispatcherPodReaderRoleBinding } from "../../chart/dispatcherJobs";
import { chartNames } from "../../chart/names";
import { silentLogger } from "../../dispatcher/log";
import { runDispatcher } from "../../dispatcher/run";
import { startSimulator } from "../../sim";
import type { KubeObject, Simulator } from "../../sim/types";
import {
  createOwnerJob,
  grantChartRbac,
  installTemplate,
  NS,
  OWNER_JOB,
  PREFIX,
  worker,
  writeTemplate,
} from "../dispatcher/helpers";

const names = chartNames();
const PUBLISHED_JOB_VERBS = ["create", "get", "delete"];

async function dispatch(sim: Simulator) {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(sim.kubeconfigFor(NS, names.dispatcherServiceAccount));
  return runDispatcher(
    {
      // Failed Jobs and their pods outlive the run (the default TTL is 100 ms real here), so reasons come from pods.
      jobTemplate: writeTemplate(installTemplate({ backoffLimit: 0, ttlSeconds: 50_000_000 })),
      namePrefix: PREFIX,
      ownerJobName: OWNER_JOB,
      namespace: NS,
      parallelism: 5,
      stuckAfterSecs: 600,
    },
    { kubeConfig, logger: silentLogger },
  );
}

describe("chart: the component's dispatcher reader Role covers the published chart 4.0.0's RBAC (simulator)", function () {
  this.timeout(300_000);
  const fleet = () => [
    ...Array.from({ length: 6 }, (_, i) => worker(`r-${i}`)),
    worker("bad", { kind: "fail", failure: { container: "host-check", exitCode: 3, message: "no kvm" } }),
  ];

  it("without it, the bundled dispatcher cannot list/watch Jobs under the published Role", async () => {
    const sim = await startSimulator({ fleet: { nodes: fleet() }, timeScale: 6000, authz: true });
    try {
      createOwnerJob(sim);
      grantChartRbac(sim, { jobVerbs: PUBLISHED_JOB_VERBS });
      const doc = await dispatch(sim);
      assert.equal(doc.exitCode, 2, doc.error);
      assert.match(doc.error ?? "", /missing permission: (list|watch) jobs\.batch in namespace kube-system/);
    } finally {
      await sim.close();
    }
  });

  it("with it, every node is dispatched and failure reasons come from the pods; no request is denied", async () => {
    const sim = await startSimulator({ fleet: { nodes: fleet() }, timeScale: 6000, authz: true });
    try {
      createOwnerJob(sim);
      grantChartRbac(sim, { jobVerbs: PUBLISHED_JOB_VERBS });
      const release = { name: "kata-deploy", namespace: NS };
      sim.create("roles", dispatcherPodReaderRole(names, release) as unknown as KubeObject);
      sim.create("rolebindings", dispatcherPodReaderRoleBinding(names, release) as unknown as KubeObject);
      const doc = await dispatch(sim);
      assert.equal(doc.exitCode, 1, doc.error); // one node failed on purpose
      assert.equal(doc.counts.succeeded, 6);
      assert.equal(
        doc.nodes.find((n) => n.node === "bad")?.message,
        "container host-check exited 3: no kvm [BackoffLimitExceeded]",
      );
      // Only the dispatcher's optional outcome records (node patch, Events in default; not granted here) may be
      // refused, once each.
      const denied = sim.audit
        .requests()
        .filter((r) => r.user.includes(names.dispatcherServiceAccount) && r.code === 403)
        .filter((r) => !(r.resource === "nodes" && r.verb === "patch") && !(r.resource === "events"));
      assert.deepEqual(denied, []);
    } finally {
      await sim.close();
    }
  });
});
