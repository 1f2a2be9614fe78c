// Listing by `metadata.name` (how a client with list-only RBAC re-reads one object) answers exactly what a
// full scan would: the object when every term matches, nothing otherwise, in any namespace scope.
import assert from "node:assert/strict";
import { Clients, startWithClients } from "./helpers";

describe("kube-sim list by metadata.name", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ nodes: 50, seed: 3 });
    for (const namespace of ["default", "kube-system"])
      await c.core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: "same", labels: { ns: namespace } } },
      });
  });
  after(() => c.sim.close());

  it("finds one node by name, with or without a limit, and nothing for an unknown name", async () => {
    const one = await c.core.listNode({ fieldSelector: "metadata.name=worker-7", limit: 1 });
    assert.deepEqual(
      one.items.map((n) => n.metadata?.name),
      ["worker-7"],
    );
    assert.equal(one.metadata?._continue, undefined);
    assert.equal((await c.core.listNode({ fieldSelector: "metadata.name=nope" })).items.length, 0);
  });

  it("ANDs the other terms and the label selector", async () => {
    const mismatch = await c.core.listNode({
      fieldSelector: "metadata.name=worker-7,spec.unschedulable=true",
    });
    assert.equal(mismatch.items.length, 0);
    const label = await c.core.listNode({ fieldSelector: "metadata.name=worker-7", labelSelector: "nope=1" });
    assert.equal(label.items.length, 0);
  });

  it("scopes namespaced objects by namespace, and finds every namespace's object across all of them", async () => {
    const inDefault = await c.core.listNamespacedConfigMap({
      namespace: "default",
      fieldSelector: "metadata.name=same",
    });
    assert.deepEqual(
      inDefault.items.map((o) => o.metadata?.namespace),
      ["default"],
    );
    const everywhere = await c.core.listConfigMapForAllNamespaces({ fieldSelector: "metadata.name=same" });
    assert.deepEqual(everywhere.items.map((o) => o.metadata?.namespace).sort(), ["default", "kube-system"]);
  });
});
