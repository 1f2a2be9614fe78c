// The dispatcher's client keeps its connections: kube-sim counts the TLS handshakes it completes, and a run of
// sequential calls through `clientNodeApi` must reuse its pool, not pay a handshake per call (the profile of a 1,000-node bench
// run showed TLS setup as the largest single cost before the reuse).
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { clientNodeApi } from "../../dispatcher/kubeApi";
import { startSimulator, type RunningSimulator } from "../../sim";

describe("dispatcher client: connections are reused", function () {
  this.timeout(300_000);
  let sim: RunningSimulator;
  before(async () => {
    sim = await startSimulator({ nodes: 3 });
  });
  after(() => sim.close());

  it("20 sequential reads of both kinds cost no new TLS handshake once the pool is warm", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(sim.kubeconfigPath);
    const api = clientNodeApi(kc);
    const before = sim.connectionsOpened();
    // Warm-up: client-node's first call runs on the pool its own authentication made; every later call runs
    // on the pool shared from then on.
    await api.listNodes({ limit: 1 });
    await api.listNodes({ limit: 1 });
    const warm = sim.connectionsOpened();
    assert.ok(warm - before <= 2, `warm-up opened ${warm - before} connections`);
    for (let i = 0; i < 10; i++) {
      await api.listNodes({ limit: 2 });
      await api.listJobs("default", {});
    }
    assert.equal(sim.connectionsOpened() - warm, 0);
  });

  it("the counter sees a client that does not reuse: one handshake per request", async () => {
    const before = sim.connectionsOpened();
    for (let i = 0; i < 3; i++) {
      const kc = new KubeConfig();
      kc.loadFromFile(sim.kubeconfigPath);
      await clientNodeApi(kc).listNodes({ limit: 1 });
    }
    assert.equal(sim.connectionsOpened() - before, 3);
  });
});
