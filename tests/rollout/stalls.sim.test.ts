// Stalls mid-install are named within the grace period (issue #17 item 2): a node that goes NotReady under its
// install and stays so, and a node deleted under its install. The dispatcher would wait for such a Job until the
// rollout's timeout; the rollout must end within stuckGraceSeconds of the stall instead, the node's result saying why
// and what would fix it, every other node as the simulator's audit says, and nothing left running in the cluster.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutProvider } from "./serialized";
import {
  INSTALL_DISPATCHER_JOB,
  INSTALL_OWNER,
  RELEASE,
  byNode,
  expectInitFailure,
  simJobOutcomes,
  startRelease,
  type Release,
  workerFleet,
} from "./simHarness";

process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";
const rolloutProvider = directProvider as Required<RolloutProvider>;

const GRACE_SECONDS = 5;
const WORKERS = ["w-1", "w-2", "w-3", "w-4"];

describe("stalls mid-install are named within the grace period, not the timeout (simulator)", function () {
  this.timeout(300_000);
  for (const kind of ["NotReady for good", "deleted"] as const) {
    describe(`a node ${kind} while its Job runs`, () => {
      let r: Release;
      before(async () => {
        r = await startRelease({
          sim: {
            seed: 9,
            timeScale: 1_000,
            // 4 s real per install: long enough to cut a node while its Job runs.
            jobDurationMs: 4_000_000,
            fleet: workerFleet(WORKERS),
          },
          values: { job: { ttlSecondsAfterFinished: 50_000_000 } },
          rollout: { timeoutSeconds: 600, stuckGraceSeconds: GRACE_SECONDS },
        });
      });
      after(async () => r?.close());

      it("ends within the grace period; the node failed, saying why and what would fix it; nothing left running", async () => {
        const create = rolloutProvider.create(r.inputs);
        create.catch(() => undefined);
        // Cut a node whose install Job runs and which does not host the dispatcher (that case is a dead dispatcher).
        let cut = "";
        await r.sim.waitFor(() => {
          const dispatcherNode = r.sim
            .list("pods", { namespace: RELEASE.namespace })
            .find((p) => p.metadata.ownerReferences?.some((o) => o.name === INSTALL_DISPATCHER_JOB))
            ?.spec?.nodeName;
          const running = r.sim.audit.jobsByNode();
          cut =
            WORKERS.find(
              (n) =>
                n !== dispatcherNode &&
                (running[n]?.jobs ?? []).some((j) => j.owner === INSTALL_OWNER && j.outcome === "active"),
            ) ?? "";
          return cut !== "";
        }, 120_000);
        const cutAt = Date.now();
        if (kind === "deleted") r.sim.delete("nodes", undefined, cut);
        else r.sim.setNodeNotReady(cut);
        const failure = await expectInitFailure(create);
        const seconds = (Date.now() - cutAt) / 1000;
        console.log(
          `      node ${kind}: the rollout ended ${seconds.toFixed(1)}s after the cut (grace ${GRACE_SECONDS}s)`,
        );
        // Within the grace period, plus the stuck scan's period (grace/4) and a busy machine's slack; the timeout is 600 s.
        assert.ok(
          seconds < GRACE_SECONDS + 15,
          `ended ${seconds}s after the cut: ${failure.message.slice(0, 300)}`,
        );

        const results = byNode(decodeResults(failure.properties.results));
        const mine = results.get(cut);
        assert.equal(mine?.outcome, "failed", JSON.stringify(mine));
        if (kind === "deleted") {
          // Its pods go with the node (PodGC) and the Job fails on its own, or its new pod can never be scheduled.
          assert.match(mine?.reason ?? "", /BackoffLimitExceeded|Stuck/, JSON.stringify(mine));
          assert.match(mine?.message ?? "", /left the selection while its install ran .*next `pulumi up`/);
        } else {
          assert.equal(mine?.reason, "Stuck", JSON.stringify(mine));
          assert.match(mine?.message ?? "", /not ready \(NodeNotReady\)|cannot be scheduled/);
          assert.match(mine?.message ?? "", /bring the node back|make a node schedulable/);
        }
        assert.match(failure.message, new RegExp(`${cut} \\(`), "the message names the node");

        // Every other node as the audit says its Job ended; one Job per node.
        const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
        for (const n of WORKERS.filter((w) => w !== cut)) {
          assert.equal(results.get(n)?.outcome, truth.get(n)?.outcome, n);
          assert.equal(truth.get(n)?.outcome, "succeeded", n);
        }
        for (const [node, report] of Object.entries(r.sim.audit.jobsByNode()))
          assert.equal(report.jobs.filter((j) => j.owner === INSTALL_OWNER).length, 1, node);

        // Nothing installs later outside a `pulumi up`: no dispatcher and no per-node Job of the run is left active.
        await r.sim.waitFor(() => {
          const jobs = r.sim.list("jobs", { namespace: RELEASE.namespace });
          return !jobs.some(
            (j) =>
              (j.metadata.name === INSTALL_DISPATCHER_JOB ||
                j.metadata.labels?.["kata-deploy-job-dispatcher/owner"] === INSTALL_OWNER) &&
              !j.metadata.deletionTimestamp &&
              !(
                j.status as { conditions?: { type: string; status: string }[] } | undefined
              )?.conditions?.some(
                (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
              ),
          );
        }, 30_000);
      });
    });
  }
});
