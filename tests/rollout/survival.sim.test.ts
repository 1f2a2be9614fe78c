// The rollout survives its dispatcher, and two rollouts of one release never delete each other's work (issue #17
// item 3). Ground truth is the simulator's audit log: every per-node Job ever created, how it ended, and how many
// ran at once.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutOutputs } from "../../rollout/types";
import type { RunningSimulator } from "../../sim";
import type { RolloutProvider } from "./serialized";
import {
  INSTALL_DISPATCHER_JOB as DISPATCHER_JOB,
  INSTALL_OWNER,
  RELEASE,
  deployRelease,
  perNodeJobsCreated,
  runningDispatcherPod,
  startRelease,
  type Release,
} from "./simHarness";

const rolloutProvider = directProvider as Required<RolloutProvider>;

/**
 * Every node has exactly one Job of the owner, and it succeeded; never two at once on a node; no per-node Job was
 * deleted while it ran; never more than `parallelism` in flight.
 */
export function assertEveryNodeOnce(
  sim: RunningSimulator,
  nodes: readonly string[],
  parallelism: number,
): void {
  const byNode = sim.audit.jobsByNode();
  for (const node of nodes) {
    const jobs = (byNode[node]?.jobs ?? []).filter((j) => j.owner === INSTALL_OWNER);
    assert.deepEqual(
      jobs.map((j) => j.outcome),
      ["succeeded"],
      `node ${node}: ${JSON.stringify(jobs)}`,
    );
    assert.ok((byNode[node]?.maxConcurrentActive ?? 0) <= 1, `node ${node} ran two Jobs at once`);
  }
  const peak = sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0;
  assert.ok(peak <= parallelism, `peak in flight ${peak} > P=${parallelism}`);
}

/** Captures the rollout's log lines (stderr) while `fn` runs. */
async function capturingLog<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const saved = process.env.KATA_ROLLOUT_LOG;
  const write = process.stderr.write.bind(process.stderr);
  const lines: string[] = [];
  process.env.KATA_ROLLOUT_LOG = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), lines };
  } finally {
    process.stderr.write = write;
    process.env.KATA_ROLLOUT_LOG = saved;
  }
}

describe("the rollout survives its dispatcher; concurrent rollouts of one release (simulator)", function () {
  // Bounds for a busy machine; each run takes a few seconds on an idle one.
  this.timeout(180_000);

  describe("the dispatcher pod killed twice mid-run", () => {
    const P = 4;
    let r: Release;
    let outs: RolloutOutputs;
    let lines: string[] = [];
    const kills: number[] = [];
    before(async () => {
      process.env.KATA_ROLLOUT_LOG = "quiet";
      r = await startRelease({
        sim: { nodes: 24, seed: 31, timeScale: 1000, jobDurationMs: 200_000 },
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
      });
      const run = capturingLog(() => rolloutProvider.create(r.inputs));
      for (const threshold of [4, 12]) {
        await r.sim.waitFor(
          () => perNodeJobsCreated(r.sim) >= threshold && !!runningDispatcherPod(r.sim),
          60_000,
        );
        kills.push(perNodeJobsCreated(r.sim));
        r.sim.delete("pods", RELEASE.namespace, runningDispatcherPod(r.sim) ?? "");
      }
      const done = await run;
      outs = done.value.outs as RolloutOutputs;
      lines = done.lines;
    });
    after(async () => r?.close());

    it("the same create succeeds on every node, with exactly one successful Job per node and never more than P", () => {
      const results = decodeResults(outs.results);
      assert.equal(results.length, 24);
      assert.deepEqual(
        results.filter((x) => x.outcome !== "succeeded").map((x) => `${x.node}: ${x.reason}`),
        [],
      );
      assertEveryNodeOnce(
        r.sim,
        results.map((x) => x.node),
        P,
      );
      assert.ok(
        kills.every((k) => k < 24),
        `both kills landed mid-run (${kills.join(", ")} Jobs created)`,
      );
    });

    it("replaced the dispatcher Job twice, orphaning (never deleting) the per-node Jobs, and says so", () => {
      const created = r.sim.audit
        .transitions("jobs")
        .filter((t) => t.kind === "created" && t.name === DISPATCHER_JOB).length;
      assert.equal(created, 3, "the dispatcher Job was created once and replaced twice");
      const deletedPerNode = Object.values(r.sim.audit.jobsByNode())
        .flatMap((x) => x.jobs)
        .filter((j) => j.owner === INSTALL_OWNER && j.outcome === "deleted");
      assert.deepEqual(deletedPerNode, []);
      assert.equal(
        lines.filter((l) => /install: dispatcher replaced \(attempt [12]\)/.test(l)).length,
        2,
        lines.join(""),
      );
    });
  });

  describe("two rollouts of one release at once", () => {
    const P = 3;
    let r: Release;

    beforeEach(async () => {
      process.env.KATA_ROLLOUT_LOG = "quiet";
      r = await startRelease({
        sim: { nodes: 12, seed: 41, timeScale: 1000, jobDurationMs: 200_000 },
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
      });
    });
    afterEach(async () => r?.close());

    it("same inputs: the second adopts the first's dispatcher and says so; both report the one Job per node", async () => {
      const first = rolloutProvider.create(r.inputs);
      await r.sim.waitFor(() => perNodeJobsCreated(r.sim) >= 2, 60_000);
      const second = await capturingLog(() => rolloutProvider.create(r.inputs));
      const a = decodeResults(((await first).outs as RolloutOutputs).results);
      const b = decodeResults((second.value.outs as RolloutOutputs).results);
      assert.ok(
        second.lines.some((l) => /adopted the running dispatcher Job/.test(l)),
        second.lines.join(""),
      );
      assert.deepEqual(b, a);
      assertEveryNodeOnce(
        r.sim,
        a.map((x) => x.node),
        P,
      );
    });

    it("new inputs: the second waits for the first to end instead of deleting its work, then runs its own", async () => {
      const first = rolloutProvider.create(r.inputs);
      await r.sim.waitFor(() => perNodeJobsCreated(r.sim) >= 2, 60_000);
      const next = await deployRelease(r.sim, {
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
        rerunToken: "second",
      });
      assert.notEqual(next.inputs.runKey, r.inputs.runKey);
      const second = await capturingLog(() => rolloutProvider.create(next.inputs));
      const a = decodeResults(((await first).outs as RolloutOutputs).results);
      const b = decodeResults((second.value.outs as RolloutOutputs).results);
      assert.ok(
        second.lines.some((l) => /of another rollout .* is running; waiting for it to end/.test(l)),
        second.lines.join(""),
      );
      assert.ok(a.length === 12 && a.every((x) => x.outcome === "succeeded"));
      assert.ok(b.length === 12 && b.every((x) => x.outcome === "succeeded"));
      // Per node: the first run's Job succeeded before the second run removed it; the second's succeeded too. No
      // per-node Job was deleted while it ran, and the two runs never overlapped on a node.
      const byNode = r.sim.audit.jobsByNode();
      for (const x of a) {
        const jobs = (byNode[x.node]?.jobs ?? []).filter((j) => j.owner === INSTALL_OWNER);
        assert.deepEqual(
          jobs.map((j) => j.outcome),
          ["succeeded", "succeeded"],
          `node ${x.node}: ${JSON.stringify(jobs)}`,
        );
        assert.ok(jobs[1].createdAt >= (jobs[0].finishedAt ?? Infinity), `node ${x.node}: runs overlapped`);
      }
      const peak = r.sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0;
      assert.ok(peak <= P, `peak ${peak}`);
    });
  });
});
