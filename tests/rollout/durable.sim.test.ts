// Results that stay true under a hostile cluster: timeouts, Jobs removed by their TTL while watches break, stalls.
// Ground truth is the simulator's audit log and store, never the rollout's own bookkeeping.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutProvider } from "./serialized";
import { INSTALL_OWNER, byNode, expectInitFailure, startRelease, type Release } from "./simHarness";

process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";

const rolloutProvider = directProvider as Required<RolloutProvider>;

const linux = (name: string, machineID: string) => ({
  name,
  labels: { "kubernetes.io/os": "linux" },
  containerRuntimeVersion: "containerd://2.1.5",
  machineID,
});

describe("rollout results under timeouts, TTL 0 and broken watches (simulator)", function () {
  this.timeout(120_000);

  describe("a timeout while a Job hangs", () => {
    let r: Release;
    before(async () => {
      r = await startRelease({
        sim: {
          seed: 5,
          timeScale: 20_000,
          jobDurationMs: 60_000,
          fleet: {
            nodes: [
              linux("ok-1", "m1"),
              { ...linux("hangs", "m2"), outcome: { kind: "hang" } },
              {
                ...linux("gpu-1", "m3"),
                taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
              },
            ],
          },
        },
        values: { job: { ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 5, stuckGraceSeconds: 3600 },
      });
    });
    after(async () => r?.close());

    it("keeps a tainted node skipped (Tainted), not failed: Timeout; the audit shows no Job was ever made for it", async () => {
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      const results = byNode(decodeResults(failure.properties.results));
      const jobs = r.sim.audit.jobsByNode();
      assert.equal(jobs["gpu-1"]?.jobs.length ?? 0, 0, "the dispatcher never dispatched to the tainted node");
      assert.equal(results.get("gpu-1")?.outcome, "skipped");
      assert.equal(results.get("gpu-1")?.reason, "Tainted");
      assert.equal(results.get("ok-1")?.outcome, "succeeded");
      assert.equal(jobs["hangs"]?.jobs.find((j) => j.owner === INSTALL_OWNER)?.outcome, "active");
      assert.equal(results.get("hangs")?.reason, "Timeout");
      assert.doesNotMatch(failure.message, /gpu-1/, "the skipped node is not listed among failures");
    });
  });
});
