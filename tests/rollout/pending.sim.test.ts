// A failed rollout stays pending work, and a new identity replaces the rollout (issue #13 item 6), against kube-sim
// with the rollout provider called in-process: what the engine would do with the answers is the engine's, the
// answers are checked here (the replace answer through both provider hosts in tests/provider/lifecycle.ts).
import assert from "node:assert/strict";
import { kataNodesNow } from "../../rollout/aggregate";
import { decodeResults } from "../../rollout/compact";
import { identityChanges, rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutInputs, RolloutOutputs } from "../../rollout/types";
import type { RolloutProvider } from "./serialized";
import {
  byNode,
  expectInitFailure,
  perNodeJobsCreated,
  startRelease,
  workerFleet,
  type Release,
} from "./simHarness";

process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";
const rolloutProvider = directProvider as Required<RolloutProvider>;
const WORKERS = ["w-1", "w-2", "w-3", "w-4"];

describe("a failed rollout stays pending until it succeeds, drift healing off (simulator)", function () {
  this.timeout(300_000);
  let r: Release;
  let failedOlds: RolloutOutputs | undefined;
  let healedOuts: RolloutOutputs | undefined;
  before(async () => {
    r = await startRelease({
      sim: {
        seed: 12,
        timeScale: 1_000,
        jobDurationMs: 30_000,
        fleet: workerFleet(WORKERS, { "w-3": { kind: "fail" } }),
      },
      values: { job: { ttlSecondsAfterFinished: 50_000_000 } },
      rollout: { timeoutSeconds: 240, healDrift: false },
    });
  });
  after(async () => r?.close());

  it("the next diff proposes an update naming the failed node; the update installs just it; then nothing is pending", async () => {
    const failed = await expectInitFailure(rolloutProvider.create(r.inputs));
    const olds = failed.properties as unknown as RolloutOutputs;
    failedOlds = olds;
    assert.equal(byNode(decodeResults(olds.results)).get("w-3")?.outcome, "failed");
    assert.equal(perNodeJobsCreated(r.sim), 4);

    // Nothing changed in the inputs, drift healing is off: the failure alone keeps the update proposed.
    assert.deepEqual(await rolloutProvider.diff("id", olds, r.inputs), { changes: true });
    r.sim.setOutcome("w-3", { kind: "succeed" });
    const { outs } = await rolloutProvider.update("id", olds, r.inputs);
    const healed = outs as RolloutOutputs;
    healedOuts = healed;
    assert.equal(perNodeJobsCreated(r.sim), 5, "one more per-node Job: the failed node's");
    const results = decodeResults(healed.results);
    assert.deepEqual(
      results.map((x) => [x.node, x.outcome]),
      WORKERS.map((n) => [n, "succeeded"]),
    );
    assert.equal(healed.summary.succeeded, 4);
    assert.deepEqual(await rolloutProvider.diff("id", healed, r.inputs), { changes: false });
  });

  it("shows even when the cluster cannot be read (drift healing on, the credentials refused)", async () => {
    assert.ok(failedOlds, "the first test recorded a failed run");
    const connection = { ...r.inputs.connection, token: "refused" } as RolloutInputs["connection"];
    const olds = { ...failedOlds, healDrift: true };
    assert.deepEqual(await rolloutProvider.diff("id", olds, { ...r.inputs, healDrift: true, connection }), {
      changes: true,
    });
  });

  it("kataNodes says where Kata is now: a deleted node leaves it at refresh, a node a later run skips (tainted) keeps it", async () => {
    assert.ok(healedOuts, "the first test healed the run");
    assert.deepEqual(kataNodesNow(decodeResults(healedOuts.results), healedOuts.kataCorrection), WORKERS);
    // w-4 is deleted; refresh (Read) re-reads the nodes.
    r.sim.delete("nodes", undefined, "w-4");
    const read = await rolloutProvider.read("id", healedOuts);
    const refreshed = read.props as RolloutOutputs;
    assert.deepEqual(refreshed.kataCorrection, { remove: ["w-4"] });
    assert.deepEqual(kataNodesNow(decodeResults(refreshed.results), refreshed.kataCorrection), [
      "w-1",
      "w-2",
      "w-3",
    ]);
    // w-1 gets a taint the per-node Jobs do not tolerate: a forced run skips it, but Kata stays on it.
    const w1 = r.sim.get("nodes", undefined, "w-1") as { spec?: Record<string, unknown> };
    r.sim.update("nodes", {
      ...w1,
      spec: { ...w1.spec, taints: [{ key: "dedicated", value: "db", effect: "NoSchedule" }] },
    } as never);
    const forced = { ...r.inputs, rerunToken: "again", runKey: `${r.inputs.runKey}-again` };
    const { outs } = await rolloutProvider.update("id", refreshed, forced);
    const after = outs as RolloutOutputs;
    assert.deepEqual(
      decodeResults(after.results).map((x) => [x.node, x.outcome]),
      [
        ["w-1", "skipped"],
        ["w-2", "succeeded"],
        ["w-3", "succeeded"],
      ],
    );
    assert.deepEqual(after.kataCorrection, { add: ["w-1"] });
    assert.deepEqual(kataNodesNow(decodeResults(after.results), after.kataCorrection), ["w-1", "w-2", "w-3"]);
  });
});

describe("a new namespace, release name or suffix replaces the rollout, the old one deleted first", () => {
  const base = {
    namespace: "kube-system",
    releaseName: "kata",
    daemonSetName: "kata-deploy",
    installDispatcherJobName: "kata-deploy-install-dispatcher",
  } as RolloutInputs;
  const olds = base as RolloutOutputs;
  it("names each changed identity input, and none for anything else", () => {
    assert.deepEqual(identityChanges(olds, { ...base, namespace: "kata-system" }), ["namespace"]);
    assert.deepEqual(identityChanges(olds, { ...base, releaseName: "kata-2" }), ["releaseName"]);
    // multiInstallSuffix: every object name of the chart carries it.
    assert.deepEqual(
      identityChanges(olds, {
        ...base,
        daemonSetName: "kata-deploy-b",
        installDispatcherJobName: "kata-deploy-b-install-dispatcher",
      }),
      ["daemonSetName", "installDispatcherJobName"],
    );
    assert.deepEqual(identityChanges(olds, { ...base, timeoutSeconds: 5 }), []);
    assert.deepEqual(
      identityChanges({ ...olds, releaseName: undefined }, base),
      [],
      "state before releaseName",
    );
    assert.deepEqual(
      identityChanges(olds, { ...base, namespace: "kata-system", chartSide: "before" }),
      [],
      "the release hooks' side is updated: its delete waits for the release's objects",
    );
  });
});
