import assert from "node:assert/strict";
import fc from "fast-check";
import { jobName } from "../../dispatcher/naming";
import {
  describeStuckPod,
  nodeRecordKeys,
  readNodeRecord,
  type JobLike,
  type NodeResult,
  type PodLike,
} from "../../kube/jobStatus";
import {
  type NodeLike,
  type TrackedJob,
  dsRunState,
  finalMessage,
  jobRunState,
  kataNodes,
  nodesLeftUndispatched,
  progressLine,
  replacementBackoffMs,
  runStalled,
  shouldReplaceDispatcher,
  selectNodes,
  summarize,
} from "../../rollout/aggregate";
import { decodeResults, encodeResults } from "../../rollout/compact";
import { canonicalJson } from "../../kube/payload";
import { computeRunKey, type RunKeyParts } from "../../rollout/runKey";
import { newRunId, replacementDispatcherJob, withExplicitNodes } from "../../rollout/provider";

const OWNER = "kata-deploy-install";
const T0 = "2026-11-25T14:00:00Z";
const at = (s: number) => new Date(Date.parse(T0) + s * 1000).toISOString().replace(".000Z", "Z");

/** Per-node Jobs as the Job controller leaves them (kubernetes-api-facts.md §1.3 typical sequences). */
function job(
  node: string,
  phase: "running" | "complete" | "failed" | "failureTarget",
  extra: Partial<JobLike["status"]> = {},
): JobLike {
  const conditions =
    phase === "complete"
      ? [
          {
            type: "SuccessCriteriaMet",
            status: "True",
            reason: "CompletionsReached",
            lastTransitionTime: at(30),
          },
          { type: "Complete", status: "True", reason: "CompletionsReached", lastTransitionTime: at(31) },
        ]
      : phase === "failed"
        ? [
            {
              type: "FailureTarget",
              status: "True",
              reason: "BackoffLimitExceeded",
              message: "Job has reached the specified backoff limit",
              lastTransitionTime: at(40),
            },
            {
              type: "Failed",
              status: "True",
              reason: "BackoffLimitExceeded",
              message: "Job has reached the specified backoff limit",
              lastTransitionTime: at(41),
            },
          ]
        : phase === "failureTarget"
          ? [
              {
                type: "FailureTarget",
                status: "True",
                reason: "DeadlineExceeded",
                lastTransitionTime: at(50),
              },
            ]
          : undefined;
  return {
    metadata: {
      name: jobName(OWNER, node),
      labels: { "kata-deploy-job-dispatcher/owner": OWNER },
      annotations: { "kata-deploy-job-dispatcher/node-name": node },
    },
    spec: { template: { spec: { nodeName: node } } },
    status: {
      startTime: at(1),
      ...(phase === "complete" ? { succeeded: 1, completionTime: at(31) } : {}),
      ...(phase === "failed" ? { failed: 4 } : {}),
      ...(phase === "running" ? { active: 1 } : {}),
      conditions,
      ...extra,
    },
  };
}

const failedPod: PodLike = {
  metadata: { name: "p1", creationTimestamp: at(35) },
  status: {
    phase: "Failed",
    initContainerStatuses: [
      {
        name: "host-check",
        state: { terminated: { exitCode: 1, message: "no usable virtualization backend" } },
      },
    ],
  },
};

const dispatcherJob = (phase: "running" | "complete" | "failed"): TrackedJob => ({
  job: {
    metadata: { name: "kata-deploy-install-dispatcher" },
    status: {
      startTime: at(0),
      conditions:
        phase === "complete"
          ? [{ type: "Complete", status: "True" }]
          : phase === "failed"
            ? [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }]
            : undefined,
    },
  },
});

const base = { timedOut: false, timeoutSeconds: 600, now: Date.parse(T0) + 100_000, stuckGraceSeconds: 300 };

describe("rollout pure logic", () => {
  describe("jobRunState (job mode)", () => {
    it("is not done while the dispatcher runs, even when every Job seen so far is terminal", () => {
      const s = jobRunState({
        ...base,
        jobs: [{ job: job("a", "complete") }],
        dispatcher: dispatcherJob("running"),
      });
      assert.equal(s.done, false);
      assert.equal(s.counts.succeeded, 1);
    });

    it("waits for interim conditions to turn terminal (FailureTarget is not yet Failed)", () => {
      const s = jobRunState({
        ...base,
        jobs: [{ job: job("a", "complete") }, { job: job("b", "failureTarget") }],
        dispatcher: dispatcherJob("complete"),
        selected: [{ name: "a" }, { name: "b" }],
      });
      assert.equal(s.done, false);
      assert.equal(s.counts.running, 1);
    });

    it("reports success, failure with the pod's reason, skipped tainted nodes, and ends when all are terminal", () => {
      const s = jobRunState({
        ...base,
        jobs: [{ job: job("a", "complete") }, { job: job("b", "failed"), pods: [failedPod] }],
        dispatcher: dispatcherJob("complete"),
        selected: [{ name: "a" }, { name: "b" }, { name: "c", blockedBy: "gpu=true:NoSchedule" }],
      });
      assert.equal(s.done, true);
      assert.deepEqual(s.results, [
        {
          node: "a",
          outcome: "succeeded",
          job: jobName(OWNER, "a"),
          attempts: 1,
          startedAt: at(1),
          finishedAt: at(31),
        },
        {
          node: "b",
          outcome: "failed",
          job: jobName(OWNER, "b"),
          attempts: 4,
          startedAt: at(1),
          finishedAt: at(41),
          reason: "BackoffLimitExceeded",
          message: "container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]",
        },
        {
          node: "c",
          outcome: "skipped",
          attempts: 0,
          reason: "Tainted",
          message:
            "the node has taint gpu=true:NoSchedule, which the per-node Job template does not tolerate",
        },
      ]);
    });

    it("keeps the final state of a Job its TTL removed, and fails a Job deleted before it finished", () => {
      const s = jobRunState({
        ...base,
        jobs: [
          { job: job("a", "complete"), deleted: true },
          { job: job("b", "running"), deleted: true },
        ],
        dispatcher: dispatcherJob("complete"),
        selected: [{ name: "a" }, { name: "b" }],
      });
      assert.equal(s.done, true);
      assert.equal(s.results[0].outcome, "succeeded");
      assert.equal(s.results[1].reason, "JobDeleted");
    });

    it("an adopted run (after a Cancel): a node with no Job seen is unknown (NotObserved), not skipped", () => {
      const view = {
        ...base,
        jobs: [{ job: job("a", "complete") }],
        dispatcher: dispatcherJob("complete"),
        selected: [{ name: "a" }, { name: "gone" }],
      };
      // Followed from the start: the dispatcher chose not to dispatch to `gone`.
      assert.deepEqual(
        jobRunState(view).results.map((r) => [r.node, r.outcome, r.reason]),
        [
          ["a", "succeeded", undefined],
          ["gone", "skipped", "NotDispatched"],
        ],
      );
      // Adopted: its Job may have ended and been removed (TTL) while no rollout watched.
      const adopted = jobRunState({ ...view, adopted: true });
      assert.deepEqual(
        adopted.results.map((r) => [r.node, r.outcome, r.reason]),
        [
          ["a", "succeeded", undefined],
          ["gone", "unknown", "NotObserved"],
        ],
      );
      assert.match(adopted.results[1].message ?? "", /adopted a dispatcher that had run unwatched/);
    });

    it("on timeout, fails unfinished Jobs and undispatched nodes with reason Timeout", () => {
      const s = jobRunState({
        ...base,
        timedOut: true,
        jobs: [{ job: job("a", "running") }],
        dispatcher: dispatcherJob("running"),
        selected: [{ name: "a" }, { name: "z" }],
      });
      assert.equal(s.done, true);
      assert.deepEqual(
        s.results.map((r) => [r.node, r.outcome, r.reason]),
        [
          ["a", "failed", "Timeout"],
          ["z", "failed", "Timeout"],
        ],
      );
      assert.equal(s.counts.failed, 2);
    });

    it("on timeout, a node the template cannot run on stays skipped (Tainted), not failed: Timeout", () => {
      const s = jobRunState({
        ...base,
        timedOut: true,
        jobs: [{ job: job("a", "running") }],
        dispatcher: dispatcherJob("running"),
        selected: [{ name: "a" }, { name: "gpu", blockedBy: "dedicated=gpu:NoSchedule" }],
      });
      assert.deepEqual(
        s.results.map((r) => [r.node, r.outcome, r.reason]),
        [
          ["a", "failed", "Timeout"],
          ["gpu", "skipped", "Tainted"],
        ],
      );
      assert.equal(s.counts.skipped, 1);
    });

    it("a failed dispatcher fails the nodes it never reached, naming its own failure", () => {
      const d = dispatcherJob("failed");
      d.pods = [
        {
          metadata: { name: "d" },
          status: {
            phase: "Failed",
            containerStatuses: [
              {
                name: "dispatcher",
                state: { terminated: { exitCode: 1, message: "jobs.batch is forbidden" } },
              },
            ],
          },
        },
      ];
      const s = jobRunState({ ...base, jobs: [], dispatcher: d, selected: [{ name: "a" }] });
      assert.equal(s.done, true);
      assert.match(s.dispatcherFailure ?? "", /container dispatcher exited 1: jobs.batch is forbidden/);
      assert.equal(s.results[0].reason, "NotDispatched");
    });

    it("a Job removed before it was seen to finish: the node's record of this run decides; without one, unknown — never failed", () => {
      const keys = nodeRecordKeys();
      const dispatcher: TrackedJob = {
        job: { ...dispatcherJob("complete").job, metadata: { name: "d", creationTimestamp: at(0) } },
      };
      const record = (outcome: string, finishedAt: string, job = jobName(OWNER, "a")) => ({
        metadata: {
          labels: { [keys.result]: outcome },
          annotations: { [keys.finishedAt]: finishedAt, [keys.job]: `ns/${job}`, [keys.error]: "boom" },
        },
      });
      const view = (records: [string, ReturnType<typeof record>][]) => ({
        ...base,
        jobs: [{ job: job("a", "running"), deleted: true }],
        dispatcher,
        selected: [{ name: "a" }, { name: "b" }],
        namespace: "ns",
        ownerValue: OWNER,
        nodeRecords: new Map(records.map(([n, r]) => [n, readNodeRecord(r)!])),
      });
      // This run's records: a success stays a success, and a Job never seen at all (b) is known too.
      const s = jobRunState(
        view([
          ["a", record("succeeded", at(31))],
          ["b", record("failed", at(40), jobName(OWNER, "b"))],
        ]),
      );
      assert.deepEqual(
        s.results.map((r) => [r.node, r.outcome]),
        [
          ["a", "succeeded"],
          ["b", "failed"],
        ],
      );
      assert.match(s.results[1].message ?? "", /boom \(from the node's record/);
      // A Failed Job whose pods are gone takes the failing container from the record.
      const failedGone = jobRunState({
        ...view([["a", record("failed", at(41))]]),
        jobs: [{ job: job("a", "failed"), deleted: true }],
      });
      assert.equal(failedGone.results[0].message, "boom");
      // An earlier run's record (finished before this dispatcher Job was created) says nothing about this run.
      const old = jobRunState(view([["a", record("succeeded", at(-60))]]));
      assert.equal(old.results[0].outcome, "unknown");
      assert.equal(old.results[0].reason, "JobDeleted");
      // Another Job's record neither.
      const other = jobRunState(view([["a", record("succeeded", at(31), "someone-else")]]));
      assert.equal(other.results[0].outcome, "unknown");
      // While the dispatcher runs, the record may still come: the node stays open.
      const running = jobRunState({ ...view([]), dispatcher: undefined });
      assert.equal(running.done, false);
      assert.equal(summarize(old.results, 1).unknown, 1);
      assert.match(
        finalMessage("install", summarize(old.results, 1), old.results),
        /install incomplete: .*1 unknown/,
      );
    });

    it("fails a Job whose pod has been stuck longer than the grace period", () => {
      const s = jobRunState({
        ...base,
        jobs: [
          {
            job: job("a", "running"),
            stuckSince: base.now - 301_000,
            stuckReason: "container x is waiting: ImagePullBackOff",
          },
        ],
        dispatcher: dispatcherJob("complete"),
        selected: [{ name: "a" }],
      });
      assert.equal(s.done, true);
      assert.equal(s.results[0].reason, "Stuck");
    });
  });

  describe("a run that cannot progress while its dispatcher runs (runStalled)", () => {
    const stuckFor = (node: string, ms: number): TrackedJob => ({
      job: job(node, "running"),
      stuckSince: base.now - ms,
      stuckReason: `pod kata-deploy-install-${node}-x is on a node that is not ready (NodeNotReady)`,
    });
    const running = { ...base, dispatcher: dispatcherJob("running") };

    it("is stalled when every open Job is stuck past the grace period and all P slots are theirs", () => {
      const view = {
        ...running,
        jobs: [stuckFor("a", 301_000), stuckFor("b", 400_000), { job: job("c", "complete") }],
      };
      assert.match(
        runStalled(view, 2) ?? "",
        /all 2 of the dispatcher's slots .* held by 2 per-node Job\(s\) stuck/,
      );
      // Nodes left and a free slot: the dispatcher goes on, nothing is stalled.
      assert.equal(
        runStalled({ ...view, selected: [{ name: "a" }, { name: "b" }, { name: "c" }, { name: "d" }] }, 3),
        undefined,
      );
      // Without knowing P or the selection, nothing is concluded.
      assert.equal(runStalled(view, undefined), undefined);
    });

    it("is stalled when every selected node has its Job and the open ones are stuck; not before the grace period", () => {
      const selected = [{ name: "a" }, { name: "c" }, { name: "t", blockedBy: "x:NoSchedule" }];
      const view = { ...running, selected, jobs: [stuckFor("a", 301_000), { job: job("c", "complete") }] };
      assert.match(
        runStalled(view, 100) ?? "",
        /every selected node has its Job, and the 1 per-node Job\(s\) stuck/,
      );
      assert.equal(runStalled({ ...view, jobs: [stuckFor("a", 299_000)] }, 100), undefined, "grace not over");
      assert.equal(
        runStalled({ ...view, jobs: [stuckFor("a", 301_000), { job: job("c", "running") }] }, 100),
        undefined,
        "another Job still runs",
      );
      assert.equal(runStalled({ ...view, jobEventsLost: true }, 100), undefined, "Jobs may have gone unseen");
    });

    it("a node that joined after the dispatcher's Job was created is not its target: the run still stalls", () => {
      const created = (t: string) => ({
        ...dispatcherJob("running").job,
        metadata: { name: "d", creationTimestamp: t },
      });
      const view = {
        ...base,
        dispatcher: { job: created(at(10)) },
        selected: [
          { name: "a", createdAt: at(0) },
          { name: "c", createdAt: at(0) },
          { name: "late", createdAt: at(11) },
        ],
        jobs: [stuckFor("a", 301_000), { job: job("c", "complete") }],
      };
      assert.match(
        runStalled(view, 100) ?? "",
        /every node the dispatcher was given has its Job \(1 joined after it started\)/,
      );
      // Joined in the same second as the dispatcher (it may have listed it), or before: a target, so the run waits.
      assert.equal(runStalled({ ...view, dispatcher: { job: created(at(11)) } }, 100), undefined);
      assert.equal(runStalled({ ...view, dispatcher: { job: created(at(12)) } }, 100), undefined);
    });

    it("ends the run: the stuck node failed (Stuck) with its fix, an undispatched node failed naming the stall", () => {
      const jobs = [stuckFor("a", 301_000)];
      const view = { ...running, jobs, selected: [{ name: "a" }, { name: "b" }] };
      const why = runStalled(view, 1);
      const s = jobRunState({ ...view, runStall: why });
      assert.equal(s.done, true);
      assert.equal(s.dispatcherPhase, "stalled");
      const [a, b] = s.results;
      assert.equal(a.reason, "Stuck");
      assert.match(
        a.message ?? "",
        /NodeNotReady\) \(for 301s\); its node stopped reporting: bring the node back/,
      );
      assert.equal(b.outcome, "failed");
      assert.equal(b.reason, "NotDispatched");
      assert.match(b.message ?? "", /the rollout cannot progress: all 1 of the dispatcher's slots/);
      assert.equal(jobRunState(view).done, false, "without the stall the run waits for the dispatcher");
    });

    it("says so when a node that did not succeed left the selection during its install (deleted)", () => {
      const s = jobRunState({
        ...base,
        jobs: [{ job: job("gone", "failed") }, { job: job("a", "complete") }],
        dispatcher: dispatcherJob("failed"),
        selected: [{ name: "a" }],
        selectionListed: true,
      });
      const gone = s.results.find((r) => r.node === "gone");
      assert.equal(gone?.outcome, "failed");
      assert.match(gone?.message ?? "", /node gone left the selection while its install ran/);
      assert.doesNotMatch(s.results.find((r) => r.node === "a")?.message ?? "", /left the selection/);
      const unread = jobRunState({
        ...base,
        jobs: [{ job: job("gone", "failed") }],
        dispatcher: dispatcherJob("failed"),
        selected: [],
      });
      assert.doesNotMatch(
        unread.results[0].message ?? "",
        /left the selection/,
        "a failed read says nothing",
      );
    });
  });

  describe("selectNodes", () => {
    const cp: NodeLike = {
      metadata: { name: "cp", labels: { "node-role.kubernetes.io/control-plane": "" } },
    };
    const w1: NodeLike = {
      metadata: { name: "w1", labels: { role: "worker" } },
      spec: { taints: [{ key: "gpu", value: "true", effect: "NoSchedule" }] },
    };
    const w2: NodeLike = { metadata: { name: "w2", labels: { role: "worker" } } };
    it("unions the server's answers per selector, names win, and explains untolerated taints", () => {
      // What a server answers for `role=worker` and for `node-role.kubernetes.io/control-plane`.
      assert.deepEqual(
        selectNodes(
          [[w2, w1], [cp]],
          { selectors: ["role=worker", "node-role.kubernetes.io/control-plane"] },
          [],
        ),
        [{ name: "cp" }, { name: "w1", blockedBy: "gpu=true:NoSchedule" }, { name: "w2" }],
      );
      assert.deepEqual(
        selectNodes([[w2, w1], [w2]], { selectors: ["a", "b"] }).map((n) => n.name),
        ["w1", "w2"],
        "deduplicated",
      );
      assert.deepEqual(selectNodes([[cp, w1, w2]], { nodes: ["cp", "gone"] }), [{ name: "cp" }]);
      assert.deepEqual(
        selectNodes([[{ metadata: { name: "x", deletionTimestamp: "2026-01-01T00:00:00Z" } }, w2]], {}),
        [{ name: "w2" }],
      );
    });
  });

  describe("dsRunState (daemonset mode)", () => {
    const nodes: NodeLike[] = [
      { metadata: { name: "n1" } },
      { metadata: { name: "n2" } },
      {
        metadata: { name: "n3" },
        spec: { taints: [{ key: "dedicated", value: "db", effect: "NoSchedule" }] },
      },
      { metadata: { name: "n4", labels: { other: "x" } } },
      // Cordoned nodes keep DaemonSet pods (automatic toleration).
      {
        metadata: { name: "n5" },
        spec: { taints: [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }] },
      },
    ];
    const pod = (node: string, ready: boolean, waiting?: string) => ({
      metadata: { name: `kata-${node}`, creationTimestamp: at(0) },
      spec: { nodeName: node },
      status: {
        phase: ready ? "Running" : "Pending",
        startTime: at(1),
        conditions: [{ type: "Ready", status: ready ? "True" : "False", lastTransitionTime: at(20) }],
        containerStatuses: waiting ? [{ name: "kube-kata", state: { waiting: { reason: waiting } } }] : [],
      },
    });
    const view = {
      nodes,
      nodeSelector: undefined,
      dsObserved: true,
      dsName: "kata-deploy",
      timedOut: false,
      timeoutSeconds: 600,
      now: base.now,
      startedAt: base.now - 100_000,
      stuckSince: new Map<string, number>(),
      stuckGraceSeconds: 300,
    };
    it("succeeds nodes with a Ready pod, skips untolerated taints, keeps cordoned nodes, waits for the rest", () => {
      const s = dsRunState({
        ...view,
        pods: [pod("n1", true), pod("n2", false), pod("n4", true), pod("n5", true)],
      });
      assert.equal(s.done, false);
      assert.deepEqual(
        s.results.map((r) => [r.node, r.outcome, r.reason ?? ""]),
        [
          ["n1", "succeeded", ""],
          ["n2", "failed", "Timeout"],
          ["n3", "skipped", "Tainted"],
          ["n4", "succeeded", ""],
          ["n5", "succeeded", ""],
        ],
      );
      assert.equal(s.counts.running, 1);
    });
    it("fails a node whose pod is stuck past the grace period; honours the nodeSelector", () => {
      const s = dsRunState({
        ...view,
        nodeSelector: { other: "x" },
        pods: [pod("n4", false, "ImagePullBackOff")],
        stuckSince: new Map([["n4", base.now - 400_000]]),
      });
      assert.equal(s.done, true);
      assert.deepEqual(
        s.results.map((r) => [r.node, r.reason]),
        [["n4", "Stuck"]],
      );
    });
  });

  describe("stalls", () => {
    it("a crash loop between its restarts (running, not Ready, restarted) is still stuck, so its clock runs on", () => {
      const looping = {
        metadata: { name: "kata-n1", creationTimestamp: at(0) },
        spec: { nodeName: "n1" },
        status: {
          phase: "Running",
          conditions: [{ type: "Ready", status: "False" }],
          containerStatuses: [{ name: "kube-kata", restartCount: 4, state: { running: {} } }],
        },
      };
      const s = dsRunState({
        nodes: [{ metadata: { name: "n1" } }],
        pods: [looping],
        dsObserved: true,
        dsName: "kata-deploy",
        timedOut: false,
        timeoutSeconds: 600,
        now: base.now,
        startedAt: base.now - 400_000,
        stuckSince: new Map([["n1", base.now - 301_000]]),
        stuckGraceSeconds: 300,
      });
      assert.equal(s.done, true);
      assert.equal(s.results[0].reason, "Stuck");
      assert.match(
        s.results[0].message ?? "",
        /restarted 4 time\(s\) without becoming Ready .*kubectl logs --previous/,
      );
    });

    it("names a pod whose node went NotReady, and a dispatcher that cannot start, with what would fix it", () => {
      assert.match(
        describeStuckPod([
          {
            metadata: { name: "p" },
            status: {
              phase: "Running",
              conditions: [{ type: "Ready", status: "False", reason: "NodeNotReady" }],
            },
          },
        ]) ?? "",
        /pod p is on a node that is not ready/,
      );
      const s = jobRunState({
        ...base,
        jobs: [],
        dispatcher: dispatcherJob("running"),
        dispatcherStall: {
          since: base.now - 300_000,
          reason: "pod d-1 cannot be scheduled (Unschedulable): 0/0 nodes",
        },
        selected: [{ name: "a" }],
      });
      assert.equal(s.done, true);
      assert.equal(s.dispatcherPhase, "stalled");
      assert.match(
        s.dispatcherFailure ?? "",
        /cannot run: pod d-1 cannot be scheduled .* make a node schedulable/,
      );
      assert.equal(s.results[0].reason, "NotDispatched");
      assert.equal(
        jobRunState({
          ...base,
          jobs: [],
          dispatcher: dispatcherJob("running"),
          dispatcherStall: { since: base.now - 1000, reason: "x" },
        }).done,
        false,
      );
    });
  });

  describe("compact encoding", () => {
    const result = fc.record(
      {
        node: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,40}$/),
        outcome: fc.constantFrom<NodeResult["outcome"]>("succeeded", "failed", "skipped", "unknown"),
        attempts: fc.nat(10),
        job: fc.option(fc.string(), { nil: undefined }),
        startedAt: fc.option(fc.integer({ min: 0, max: 10_000 }).map(at), { nil: undefined }),
        finishedAt: fc.option(
          fc.oneof(fc.integer({ min: 0, max: 10_000 }).map(at), fc.constant("2026-11-25T14:00:00.123Z")),
          { nil: undefined },
        ),
        reason: fc.option(fc.constantFrom("BackoffLimitExceeded", "Timeout", "Tainted"), { nil: undefined }),
        message: fc.option(fc.string(), { nil: undefined }),
      },
      { requiredKeys: ["node", "outcome", "attempts"] },
    );
    it("round-trips any results exactly (property)", () => {
      fc.assert(
        fc.property(fc.array(result, { maxLength: 30 }), (results) => {
          const clean = results.map(
            (r) =>
              Object.fromEntries(
                Object.entries(r).filter(([, v]) => v !== undefined),
              ) as unknown as NodeResult,
          );
          assert.deepEqual(decodeResults(encodeResults(clean, OWNER)), clean);
        }),
      );
    });
    it("stays well under 200 bytes per node on a 5000-node fleet with mixed outcomes", () => {
      const results: NodeResult[] = Array.from({ length: 5000 }, (_, i) => {
        const node = `ip-10-0-${Math.floor(i / 250)}-${i % 250}.eu-west-1.compute.internal`;
        const failed = i % 50 === 0;
        return {
          node,
          outcome: failed ? "failed" : "succeeded",
          job: jobName(OWNER, node),
          attempts: failed ? 4 : 1,
          startedAt: at(i % 600),
          finishedAt: at((i % 600) + 95),
          ...(failed
            ? {
                reason: "BackoffLimitExceeded",
                message:
                  "container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]",
              }
            : {}),
        };
      });
      const text = encodeResults(results, OWNER);
      const perNode = Buffer.byteLength(text) / results.length;
      assert.ok(perNode < 100, `compact encoding uses ${perNode.toFixed(1)} bytes per node`);
      assert.ok(Buffer.byteLength(JSON.stringify(results)) / results.length > 2 * perNode);
      assert.deepEqual(decodeResults(text), results);
    });
    it("round-trips a 150,000-node fleet (no argument spreading that overflows the stack)", () => {
      const results: NodeResult[] = Array.from({ length: 150_000 }, (_, i) => ({
        node: `n-${i}`,
        outcome: "succeeded",
        job: jobName(OWNER, `n-${i}`),
        attempts: 1,
        startedAt: at(i % 3600),
        finishedAt: at((i % 3600) + 120),
      }));
      assert.deepEqual(decodeResults(encodeResults(results, OWNER)), results);
    });
  });

  describe("run key", () => {
    const parts: RunKeyParts = {
      chartVersion: "4.0.0",
      chartReference: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy",
      mode: "job",
      dispatcherImplementation: "bundled",
      dispatcherScriptSha256: "abc",
      jobTemplates: { "install-job.yaml": "a: 1\n", "cleanup-job.yaml": "b: 2\n" },
      installDispatcherJob: {
        spec: { template: { spec: { containers: [{ args: ["--parallelism=100"] }] } } },
      },
    };
    it("changes with every part that reaches the Jobs or the dispatcher, and with rerunToken", () => {
      const k = computeRunKey(parts);
      assert.match(k, /^v1:[0-9a-f]{64}$/);
      const variants: Partial<RunKeyParts>[] = [
        { chartVersion: "4.0.1" },
        { chartReference: "oci://mirror/kata-deploy" },
        { dispatcherImplementation: "upstream" },
        { dispatcherScriptSha256: "abd" },
        { jobTemplates: { ...parts.jobTemplates, "install-job.yaml": "a: 2\n" } },
        {
          installDispatcherJob: {
            spec: { template: { spec: { containers: [{ args: ["--parallelism=50"] }] } } },
          },
        },
        { rerunToken: "2026-11-25" },
      ];
      for (const v of variants) assert.notEqual(computeRunKey({ ...parts, ...v }), k, JSON.stringify(v));
    });
    it("does not change with key order or an empty rerunToken", () => {
      const reordered = JSON.parse(canonicalJson(parts)) as RunKeyParts;
      assert.equal(computeRunKey({ ...reordered, rerunToken: "" }), computeRunKey(parts));
      assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: undefined }] }), '{"a":[{"d":1}],"b":1}');
    });
  });

  describe("replacing a dead dispatcher", () => {
    const view = (jobs: TrackedJob[], extra: Partial<Parameters<typeof nodesLeftUndispatched>[0]> = {}) => ({
      ...base,
      jobs,
      selected: [
        { name: "a" },
        { name: "b" },
        { name: "c" },
        { name: "d" },
        { name: "t", blockedBy: "x=y:NoSchedule" },
      ],
      namespace: "kube-system",
      ownerValue: OWNER,
      ...extra,
    });
    it("hands on only the eligible nodes with no Job of the run; a Job deleted mid-install counts as never run", () => {
      const jobs: TrackedJob[] = [
        { job: job("a", "complete"), deleted: true },
        { job: job("b", "running") },
        { job: job("c", "running"), deleted: true },
      ];
      assert.deepEqual(nodesLeftUndispatched(view(jobs)), ["c", "d"]);
    });
    it("hands on nothing when Job events were lost (a Job may have run and gone unseen)", () => {
      assert.deepEqual(nodesLeftUndispatched(view([], { jobEventsLost: true })), []);
    });
    it("hands on nothing in an adopted run (Jobs made before it listed them may be gone unseen)", () => {
      assert.deepEqual(nodesLeftUndispatched(view([], { adopted: true })), []);
    });
    it("replaces a failed or deleted dispatcher with nodes left, within its attempts, never after exit 2 or the timeout", () => {
      const d = { phase: "failed" as const, left: 3, replaced: 0, timedOut: false };
      assert.equal(shouldReplaceDispatcher(d), true);
      assert.equal(shouldReplaceDispatcher({ ...d, exitCode: 143 }), true);
      assert.equal(shouldReplaceDispatcher({ ...d, exitCode: 2 }), false, "a setup error would repeat");
      assert.equal(shouldReplaceDispatcher({ ...d, left: 0 }), false);
      assert.equal(shouldReplaceDispatcher({ ...d, replaced: 3 }), false);
      assert.equal(shouldReplaceDispatcher({ ...d, timedOut: true }), false);
      assert.equal(shouldReplaceDispatcher({ ...d, phase: "stalled" }), false);
      assert.equal(shouldReplaceDispatcher({ ...d, phase: "succeeded" }), false);
      assert.deepEqual([1, 2, 3, 10].map(replacementBackoffMs), [1000, 2000, 4000, 30000]);
    });
    it("the replacement names the nodes left and drops --owner-job-name", () => {
      const j = {
        metadata: { name: "d" },
        spec: {
          template: {
            spec: {
              containers: [
                {
                  name: "dispatcher",
                  command: ["node", "--job-template=/t", "--owner-job-name=d", "--node-selector=a"],
                },
              ],
            },
          },
        },
      };
      const r = replacementDispatcherJob(j, ["n1"]) as typeof j;
      assert.deepEqual(r.spec.template.spec.containers[0].command, [
        "node",
        "--job-template=/t",
        "--nodes=n1",
      ]);
    });
  });

  describe("messages and heal arguments", () => {
    it("names failed nodes and reasons, and counts", () => {
      const results: NodeResult[] = [
        { node: "a", outcome: "succeeded", attempts: 1 },
        {
          node: "b",
          outcome: "failed",
          attempts: 4,
          reason: "BackoffLimitExceeded",
          message: "container host-check exited 1: no kvm [BackoffLimitExceeded]",
        },
      ];
      const summary = summarize(results, 75);
      assert.deepEqual(summary, { total: 2, succeeded: 1, failed: 1, skipped: 0, durationSeconds: 75 });
      assert.deepEqual(kataNodes(results), ["a"]);
      assert.equal(
        finalMessage("install", summary, results),
        "install failed: 1/2 nodes succeeded, 1 failed, 0 skipped in 1m15s. failed nodes: b (BackoffLimitExceeded: container host-check exited 1: no kvm [BackoffLimitExceeded])",
      );
      assert.equal(
        progressLine(
          "install",
          { done: 312, total: 5000, failed: 3, succeeded: 309, skipped: 0, running: 40 },
          65,
        ),
        "install: 312/5000 nodes done, 3 failed, 40 running, 1m05s",
      );
    });
    it("replaces the dispatcher's selection by explicit node names, leaving other arguments in order", () => {
      const job = {
        metadata: { name: "d" },
        spec: {
          template: {
            spec: {
              containers: [
                {
                  name: "dispatcher",
                  args: [
                    "--job-template=/etc/kata-job/install-job.yaml",
                    "--parallelism=100",
                    "--node-selector=a=b",
                  ],
                },
              ],
            },
          },
        },
      };
      const healed = withExplicitNodes(job, ["n1", "n2"]) as {
        spec: { template: { spec: { containers: { args: string[] }[] } } };
      };
      assert.deepEqual(healed.spec.template.spec.containers[0].args, [
        "--job-template=/etc/kata-job/install-job.yaml",
        "--parallelism=100",
        "--nodes=n1,n2",
      ]);
      assert.deepEqual(job.spec.template.spec.containers[0].args.length, 3, "the input is not modified");
    });
  });
});

describe("runId", () => {
  const key = "v1:54978da7c0ffee";

  it("differs between runs started in the same millisecond with the same run key", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newRunId(key)));
    assert.equal(ids.size, 1000);
  });

  it("never repeats the previous run's id", () => {
    const previous = newRunId(key);
    for (let i = 0; i < 100; i++) assert.notEqual(newRunId(key, previous), previous);
  });

  it("starts with the UTC time to the millisecond, so ids sort by start time, and names the run key", () => {
    const before = new Date().toISOString().replace(/[-:]/g, "");
    const id = newRunId(key);
    const after = new Date().toISOString().replace(/[-:]/g, "");
    const match = /^(\d{8}T\d{6}\.\d{3}Z)-54978da7-[0-9a-f]{16}$/.exec(id);
    assert.ok(match, id);
    assert.ok(before <= match[1] && match[1] <= after, `${before} <= ${match[1]} <= ${after}`);
  });
});
