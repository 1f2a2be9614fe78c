// The dispatcher's pure decisions (dispatcher/decide.ts) as tables of states and the actions each must produce.
// The sim tests prove the run against the simulator's audit log; these pin each rule on its own, including the
// orders of events a busy API server makes rare.
import { strict as assert } from "node:assert";
import {
  decideConflict,
  decideCreateFailure,
  decideDispatch,
  decideJobGone,
  decideJobSeen,
  decideLoop,
  decideStuck,
  decideVanishedConflict,
  exitCode,
  unfinishedResult,
  type Action,
  type JobSyncState,
  type LoopState,
  type NodeCheckState,
} from "../../dispatcher/decide";
import type { NodeState } from "../../dispatcher/fanout";
import type { JobLike } from "../../kube/jobStatus";
import { parseLabelSelector } from "../../kube/labelSelector";

const T0 = "2026-01-01T00:00:00Z";

function job(name: string, phase: "running" | "failureTarget" | "failed" | "complete", extra = {}): JobLike {
  const condition = {
    running: undefined,
    failureTarget: { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded" },
    failed: { type: "Failed", status: "True", reason: "BackoffLimitExceeded", lastTransitionTime: T0 },
    complete: { type: "Complete", status: "True", lastTransitionTime: T0 },
  }[phase];
  return {
    metadata: { name, uid: `uid-${name}` },
    status: {
      startTime: T0,
      succeeded: phase === "complete" ? 1 : 0,
      failed: phase === "failed" || phase === "failureTarget" ? 4 : 0,
      ...(condition ? { conditions: [condition] } : {}),
    },
    ...extra,
  };
}

const queued: NodeState = { kind: "queued" };
const dispatching: NodeState = { kind: "dispatching" };
const active: NodeState = { kind: "active", job: "p-n1" };
const done: NodeState = { kind: "done", result: { node: "n1", outcome: "succeeded", attempts: 1 } };

function seen(j: JobLike, slot: NodeState | undefined, stale = false): JobSyncState {
  return { job: j, node: "n1", slot, expectedName: "p-n1", stale };
}

/** Action kinds with their node or Job, enough to tell one decision from another. */
function kinds(actions: readonly Action[]): string[] {
  return actions.map((a) =>
    "node" in a
      ? `${a.kind}:${a.node}`
      : a.kind === "holdSlot"
        ? `holdSlot:${a.job}:${a.active}`
        : a.kind === "holdNews"
          ? `holdNews:${a.gone ? "gone" : "seen"}`
          : a.kind,
  );
}

describe("dispatcher decisions: a Job of this owner was seen", () => {
  const rows: [string, JobSyncState, string[]][] = [
    ["the node's running Job: nothing to do", seen(job("p-n1", "running"), active), []],
    ["the node's Job completed: its result", seen(job("p-n1", "complete"), active), ["finishFromJob:n1"]],
    ["the node's Job failed: its result", seen(job("p-n1", "failed"), active), ["finishFromJob:n1"]],
    [
      "FailureTarget: read the pods while they exist, the slot stays held",
      seen(job("p-n1", "failureTarget"), active),
      ["readFailureEarly:n1"],
    ],
    [
      "a running Job of this run for a queued node: adopted",
      seen(job("p-n1", "running"), queued),
      ["adopt:n1"],
    ],
    [
      "a finished Job of this run for a queued node: adopted and finished, never created again",
      seen(job("p-n1", "complete"), queued),
      ["adopt:n1", "finishFromJob:n1"],
    ],
    [
      "news while the create call is under way: held for its answer",
      seen(job("p-n1", "complete"), dispatching),
      ["holdNews:seen"],
    ],
    [
      "FailureTarget while creating: held, and the pods read now",
      seen(job("p-n1", "failureTarget"), dispatching),
      ["holdNews:seen", "readFailureEarly:n1"],
    ],
    [
      "another name while creating: a foreign Job holding a slot",
      seen(job("other", "running"), dispatching),
      ["holdSlot:other:true"],
    ],
    [
      "an earlier run's Job for a queued node: never adopted, it holds a slot while active",
      seen(job("p-n1", "running"), queued, true),
      ["holdSlot:p-n1:true"],
    ],
    [
      "a Job of a node outside this run: holds a slot while active",
      seen(job("p-x", "running"), undefined),
      ["holdSlot:p-x:true"],
    ],
    [
      "a finished Job of a finished node: frees whatever it held",
      seen(job("p-n1", "complete"), done),
      ["holdSlot:p-n1:false"],
    ],
    [
      "a running Job of a finished node (created by a call that seemed to fail): holds a slot",
      seen(job("p-n1", "running"), done),
      ["holdSlot:p-n1:true"],
    ],
  ];
  for (const [what, state, expected] of rows) {
    it(what, () => assert.deepEqual(kinds(decideJobSeen(state)), expected));
  }
});

describe("dispatcher decisions: a Job of this owner is gone", () => {
  const gone = (j: JobLike, slot: NodeState | undefined, deletedByUs = false, stale = false) => ({
    ...seen(j, slot, stale),
    deletedByUs,
    now: T0,
  });
  const rows: [string, ReturnType<typeof gone>, string[]][] = [
    [
      "one this run deleted: only its slot",
      gone(job("p-n1", "running"), active, true),
      ["holdSlot:p-n1:false"],
    ],
    [
      "the node's finished Job: its result from the last state seen",
      gone(job("p-n1", "complete"), active),
      ["holdSlot:p-n1:false", "finishFromJob:n1"],
    ],
    [
      "the node's Job removed while running: unknown, not failed",
      gone(job("p-n1", "running"), active),
      ["holdSlot:p-n1:false", "finishNode:n1"],
    ],
    [
      "gone while its create call is under way: held for the answer",
      gone(job("p-n1", "complete"), dispatching),
      ["holdSlot:p-n1:false", "holdNews:gone"],
    ],
    ["a Job of a finished node: its slot only", gone(job("p-n1", "complete"), done), ["holdSlot:p-n1:false"]],
    ["a Job of a queued node: its slot only", gone(job("p-n1", "running"), queued), ["holdSlot:p-n1:false"]],
  ];
  for (const [what, state, expected] of rows) {
    it(what, () => assert.deepEqual(kinds(decideJobGone(state)), expected));
  }

  it("says how a Job removed while running ended: unknown, JobDeleted, with its attempts and start", () => {
    const [, finish] = decideJobGone(gone(job("p-n1", "running"), active));
    assert.equal(finish.kind, "finishNode");
    assert.deepEqual(finish.kind === "finishNode" && finish.result, {
      node: "n1",
      outcome: "unknown",
      job: "p-n1",
      attempts: 0,
      startedAt: T0,
      finishedAt: T0,
      reason: "JobDeleted",
      message:
        "Job p-n1 was deleted before it was seen to finish (by a user, its TTL or garbage collection); its outcome is unknown",
    });
  });
});

describe("dispatcher decisions: a node re-read before its Job is created", () => {
  const linux = parseLabelSelector("kubernetes.io/os=linux");
  const base: NodeCheckState = {
    node: "n1",
    dispatching: true,
    fresh: { metadata: { uid: "u1", labels: { "kubernetes.io/os": "linux" } } },
    selectedUid: "u1",
    byName: false,
    selectors: [linux],
    selectorText: "[kubernetes.io/os=linux]",
  };
  const recorded = { node: "n1", outcome: "succeeded" as const, job: "p-n1", attempts: 0 };
  const rows: [string, Partial<NodeCheckState>, string, string?][] = [
    ["still selected and admitted: create", {}, "createJob"],
    ["no longer reserved (stopped meanwhile): nothing", { dispatching: false }, "none"],
    ["gone", { fresh: undefined }, "finishNode", "NodeGone"],
    ["replaced under the same name", { fresh: { metadata: { uid: "u2" } } }, "finishNode", "NodeReplaced"],
    ["its Job of this run already ended, per its record", { recorded }, "finishFromRecord"],
    [
      "its labels no longer match",
      { fresh: { metadata: { uid: "u1", labels: { "kubernetes.io/os": "windows" } } } },
      "finishNode",
      "NotSelected",
    ],
    [
      "named explicitly: selectors do not apply",
      { byName: true, fresh: { metadata: { uid: "u1", labels: {} } } },
      "createJob",
    ],
    [
      "tainted since it was selected",
      { tainted: "taint x:NoSchedule is not tolerated" },
      "finishNode",
      "Tainted",
    ],
    ["a record wins over a taint", { recorded, tainted: "t" }, "finishFromRecord"],
    [
      "it carries this payload already (--skip-installed-nodes)",
      { unchanged: { node: "n1", outcome: "succeeded", attempts: 0, reason: "Unchanged" } },
      "finishFromRecord",
    ],
  ];
  for (const [what, change, kind, reason] of rows) {
    it(what, () => {
      const actions = decideDispatch({ ...base, ...change });
      assert.equal(actions[0]?.kind ?? "none", kind);
      assert.equal(actions.length, kind === "none" ? 0 : 1);
      const result = actions[0]?.kind === "finishNode" ? actions[0].result : undefined;
      assert.equal(result?.reason, reason);
      if (result) assert.equal(result.outcome, "skipped");
    });
  }

  it("names the field selector only when it applies", () => {
    const message = (s: Partial<NodeCheckState>) => {
      const [a] = decideDispatch({ ...base, fresh: undefined, ...s });
      return a.kind === "finishNode" ? (a.result.message ?? "") : "";
    };
    assert.equal(message({}), "node n1 no longer exists");
    assert.match(
      message({ fieldSelector: "spec.unschedulable=false" }),
      /no longer matches --node-field-selector/,
    );
    assert.equal(
      message({ fieldSelector: "spec.unschedulable=false", byName: true }),
      "node n1 no longer exists",
    );
  });
});

describe("dispatcher decisions: a create that failed, and a name that is taken", () => {
  const failure = {
    node: "n1",
    message: "bad",
    described: "HTTP 500: bad",
    createdAny: false,
    jobTemplate: "t.yaml",
  };
  const rows: [string, Partial<typeof failure> & { code?: number; forbidden?: string }, string, (1 | 2)?][] =
    [
      ["RBAC refusal before any Job: a setup error", { code: 403, forbidden: "grant create" }, "fatal", 2],
      [
        "RBAC refusal after some Job: a run error",
        { code: 403, forbidden: "grant", createdAny: true },
        "fatal",
        1,
      ],
      ["the template's Job is invalid: every node would fail", { code: 422 }, "fatal", 2],
      ["invalid after Jobs were created: only this node", { code: 422, createdAny: true }, "failNode"],
      ["a server error past the retries: only this node", { code: 500 }, "failNode"],
      ["no answer at all: only this node", { code: undefined }, "failNode"],
      ["the name exists: look at it", { code: 409 }, "conflict"],
    ];
  for (const [what, change, kind, code] of rows) {
    it(what, () => {
      const verdict = decideCreateFailure({ ...failure, ...change });
      assert.equal(verdict.kind, kind);
      if (verdict.kind === "fatal") assert.equal(verdict.exitCode, code);
      if (verdict.kind === "failNode") assert.equal(verdict.message, "HTTP 500: bad");
    });
  }

  const conflicts: [string, Parameters<typeof decideConflict>[0], ReturnType<typeof decideConflict>][] = [
    ["this run's Job: adopted", { ownerLabel: "p", owner: "p", stale: false, beingDeleted: false }, "adopt"],
    [
      "this run's Job going away: create again",
      { ownerLabel: "p", owner: "p", stale: false, beingDeleted: true },
      "wait",
    ],
    [
      "an earlier run's: deleted, then created again",
      { ownerLabel: "p", owner: "p", stale: true, beingDeleted: false },
      "deleteStale",
    ],
    [
      "an earlier run's being deleted",
      { ownerLabel: "p", owner: "p", stale: true, beingDeleted: true },
      "awaitStale",
    ],
    [
      "another release's Job",
      { ownerLabel: "q", owner: "p", stale: false, beingDeleted: false },
      "nameTaken",
    ],
    ["a Job without the owner label", { owner: "p", stale: true, beingDeleted: false }, "nameTaken"],
  ];
  for (const [what, state, verdict] of conflicts)
    it(what, () => assert.equal(decideConflict(state), verdict));

  const vanished: [string, Parameters<typeof decideVanishedConflict>[0], "applyNews" | "retry"][] = [
    ["gone, and the watch said nothing: the name is free", undefined, "retry"],
    [
      "the watch saw it finish and go: that is the node's outcome",
      { job: job("p-n1", "complete"), gone: true },
      "applyNews",
    ],
    ["the watch saw it fail and go: that too", { job: job("p-n1", "failed"), gone: true }, "applyNews"],
    [
      "removed while running: nothing ran to an end, create again",
      { job: job("p-n1", "running"), gone: true },
      "retry",
    ],
    [
      "seen but not gone: the name is free now, create again",
      { job: job("p-n1", "complete"), gone: false },
      "retry",
    ],
  ];
  for (const [what, held, verdict] of vanished) {
    it(`409 then 404: ${what}`, () => assert.equal(decideVanishedConflict(held), verdict));
  }
});

describe("dispatcher decisions: the loop", () => {
  const base: LoopState = {
    killed: false,
    stopping: false,
    stopped: false,
    finished: false,
    dispatching: 0,
    sinceStuckCheckMs: 0,
    stuckEveryMs: 1000,
  };
  const rows: [string, Partial<LoopState>, string[]][] = [
    ["work left: fill slots, wait", {}, ["fillSlots", "wait"]],
    ["the stuck check is due", { sinceStuckCheckMs: 1000 }, ["fillSlots", "checkStuck", "wait"]],
    ["every node has its result: end", { finished: true }, ["fillSlots", "endLoop"]],
    ["killed: end at once", { killed: true, dispatching: 3 }, ["endLoop"]],
    [
      "stopping with creates under way: stop, wait for them",
      { stopping: true, dispatching: 2 },
      ["stopDispatching", "wait"],
    ],
    [
      "stopping, nothing being created: end (running Jobs are not waited for)",
      { stopping: true },
      ["stopDispatching", "endLoop"],
    ],
    ["stopped already: not stopped twice", { stopping: true, stopped: true, dispatching: 1 }, ["wait"]],
  ];
  for (const [what, change, expected] of rows) {
    it(what, () => assert.deepEqual(kinds(decideLoop({ ...base, ...change })), expected));
  }
});

describe("dispatcher decisions: the end of the run", () => {
  const base = { timedOut: false, interrupted: false };
  const rows: [string, Parameters<typeof unfinishedResult>[1], string, string][] = [
    [
      "stuck wins",
      { ...base, job: "p-n1", stuck: "pod cannot be scheduled", timedOut: true },
      "Stuck",
      "pod cannot be scheduled (its Job p-n1 was still running when the run ended)",
    ],
    [
      "timed out",
      { ...base, timedOut: true, timeoutSecs: 60 },
      "Timeout",
      "the run timed out after 60s; no Job was created for it",
    ],
    [
      "interrupted",
      { ...base, interrupted: true, job: "p-n1" },
      "Interrupted",
      "the dispatcher was stopped; its Job p-n1 was still running",
    ],
    [
      "an error with a Job running",
      { ...base, job: "p-n1", error: "boom" },
      "Aborted",
      "its Job p-n1 was still running: boom",
    ],
    [
      "an error before any Job",
      { ...base },
      "NotDispatched",
      "no Job was created for it: the run ended early",
    ],
  ];
  for (const [what, state, reason, message] of rows) {
    it(what, () => {
      const r = unfinishedResult("n1", state);
      assert.equal(r.outcome, "failed");
      assert.equal(r.reason, reason);
      assert.equal(r.message, message);
    });
  }

  it("takes attempts and start time from the Job as last seen", () => {
    const r = unfinishedResult("n1", {
      ...base,
      timedOut: true,
      job: "p-n1",
      seen: job("p-n1", "failureTarget"),
    });
    assert.equal(r.attempts, 4);
    assert.equal(r.startedAt, T0);
    assert.equal(r.job, "p-n1");
    assert.equal(unfinishedResult("n1", { ...base, job: "p-n1" }).attempts, 0);
  });

  const codes: [string, Parameters<typeof exitCode>[0], 0 | 1 | 2][] = [
    ["all succeeded", { failed: 0, unknown: 0, timedOut: false, interrupted: false }, 0],
    ["a node failed", { failed: 1, unknown: 0, timedOut: false, interrupted: false }, 1],
    ["a node unknown", { failed: 0, unknown: 1, timedOut: false, interrupted: false }, 1],
    ["timed out", { failed: 0, unknown: 0, timedOut: true, interrupted: false }, 1],
    ["interrupted", { failed: 0, unknown: 0, timedOut: false, interrupted: true }, 1],
    [
      "a setup error wins",
      { error: { exitCode: 2 }, failed: 1, unknown: 0, timedOut: true, interrupted: false },
      2,
    ],
  ];
  for (const [what, state, code] of codes)
    it(`exit code: ${what}`, () => assert.equal(exitCode(state), code));

  const stuck: [string, Parameters<typeof decideStuck>[0], ReturnType<typeof decideStuck>][] = [
    ["nothing wrong", { now: 10, repeatMs: 5 }, "clear"],
    ["first report", { why: "x", now: 10, repeatMs: 5 }, "report"],
    ["reported recently", { why: "x", reportedAt: 8, now: 10, repeatMs: 5 }, "update"],
    ["reported long ago", { why: "x", reportedAt: 5, now: 10, repeatMs: 5 }, "report"],
  ];
  for (const [what, state, verdict] of stuck)
    it(`stuck pods: ${what}`, () => assert.equal(decideStuck(state), verdict));
});
