// kube-sim's reaction probe (sim/latency.ts): real-time stamps on the server's side of a Job create's arrival
// and of the first watch event or read that shows the Job ended, for the owner asked for only. Checked against
// the test's own clock around real HTTP requests (same process, same performance.now).
import { strict as assert } from "node:assert";
import { JOB_OWNER_LABEL } from "../../kube/jobStatus";
import { Clients, eventually, jobBody, rawWatch, startWithClients } from "./helpers";

describe("kube-sim reaction probe", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ nodes: 3, timeScale: 1000, jobDurationMs: 10_000, podStartDelayMs: 0 });
  });
  after(() => c.sim.close());

  const isEnded = (o: unknown): boolean => {
    const conds =
      (o as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [];
    return conds.some((x) => (x.type === "Complete" || x.type === "Failed") && x.status === "True");
  };

  it("is off until enabled, then stamps the owner's create arrivals and the first event showing each end", async () => {
    const nodes = c.sim.list("nodes").map((n) => n.metadata.name ?? "");
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("before", nodes[0], { labels: { [JOB_OWNER_LABEL]: "run-a" } }),
    });
    assert.equal(c.sim.latency.enabled, false);
    assert.deepEqual(c.sim.latency.jobCreatesArrived(), []);

    c.sim.latency.enable("run-a");
    const t0 = performance.now();
    const w = rawWatch(c.sim, "/apis/batch/v1/namespaces/default/jobs?watch=1");
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("mine", nodes[1], { labels: { [JOB_OWNER_LABEL]: "run-a" } }),
    });
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("theirs", nodes[2], { labels: { [JOB_OWNER_LABEL]: "run-b" } }),
    });
    await eventually(
      () =>
        ["before", "mine", "theirs"].every((n) =>
          w.events.some(
            (e) => isEnded(e.object) && (e.object as { metadata: { name: string } }).metadata.name === n,
          ),
        ),
      60_000,
      "the three Jobs seen ended on the watch",
    );
    const t1 = performance.now();
    // Reads and the deletion of an ended Job do not stamp it again.
    await c.batch.readNamespacedJob({ name: "mine", namespace: "default" });
    await c.batch.deleteNamespacedJob({ name: "mine", namespace: "default" });
    await eventually(() => w.events.some((e) => e.type === "DELETED"), 60_000, "the deletion on the watch");
    w.close();

    const creates = c.sim.latency.jobCreatesArrived();
    const ends = c.sim.latency.jobEndsShown();
    assert.equal(creates.length, 1, "only run-a's create after enable");
    // run-a's two Jobs ("before" too: its end is shown after enable), each once; run-b's never.
    assert.equal(ends.length, 2);
    assert.ok(t0 <= ends[0], `${t0} ${ends}`);
    assert.ok(
      t0 <= creates[0] && creates[0] <= ends[1] && ends[1] <= t1,
      `${t0} ${creates[0]} ${ends} ${t1}`,
    );
  });

  it("stamps a Job deleted before it ended when the DELETED event is written", async () => {
    const nodes = c.sim.list("nodes").map((n) => n.metadata.name ?? "");
    c.sim.setOutcome(nodes[0], { kind: "hang" }); // the Job never ends by itself
    const w = rawWatch(
      c.sim,
      "/apis/batch/v1/namespaces/default/jobs?watch=1&fieldSelector=metadata.name%3Dgone",
    );
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("gone", nodes[0], { labels: { [JOB_OWNER_LABEL]: "run-a" } }),
    });
    const before = c.sim.latency.jobEndsShown().length;
    const t0 = performance.now();
    await c.batch.deleteNamespacedJob({ name: "gone", namespace: "default" });
    await eventually(() => w.events.some((e) => e.type === "DELETED"), 60_000, "the deletion on the watch");
    w.close();
    const ends = c.sim.latency.jobEndsShown();
    assert.equal(ends.length, before + 1);
    assert.ok(ends[ends.length - 1] >= t0);
  });
});
