import { strict as assert } from "node:assert";
import {
  describePodFailure,
  describeStuckPod,
  jobOutcome,
  nodeResultFromJob,
  type JobLike,
  type PodLike,
} from "../../kube/jobStatus";

const T0 = "2026-01-01T00:00:00Z";
const T1 = "2026-01-01T00:01:00Z";

function job(status: JobLike["status"]): JobLike {
  return {
    metadata: {
      name: "kata-deploy-install-worker-1",
      labels: {
        "kata-deploy-job-dispatcher/owner": "kata-deploy-install",
        "kata-deploy-job-dispatcher/node": "worker-1",
      },
      annotations: { "kata-deploy-job-dispatcher/node-name": "worker-1" },
    },
    spec: { template: { spec: { nodeName: "worker-1" } } },
    status,
  };
}

describe("kube/jobStatus", () => {
  it("reads the outcome from conditions as the reference's status vectors (§4.1), never from counters alone", () => {
    assert.deepEqual(
      jobOutcome(job({ conditions: [{ type: "Complete", status: "True" }] })).phase,
      "succeeded",
    );
    assert.deepEqual(jobOutcome(job({ conditions: [{ type: "Failed", status: "True" }] })).phase, "failed");
    assert.deepEqual(
      jobOutcome(job({ conditions: [{ type: "Complete", status: "False" }] })).phase,
      "running",
    );
    assert.deepEqual(jobOutcome(job(undefined)).phase, "running");
    // Deliberate difference from upstream: counters lead the conditions (kubernetes-api-facts.md §1.4).
    assert.equal(jobOutcome(job({ succeeded: 1 })).phase, "running");
    assert.equal(jobOutcome(job({ failed: 3, active: 1 })).phase, "running");
    assert.equal(jobOutcome(job({ conditions: [{ type: "Suspended", status: "True" }] })).phase, "running");
  });

  it("treats the 1.31+ interim conditions as early, non-terminal signals", () => {
    const early = jobOutcome(
      job({
        conditions: [
          { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded", lastTransitionTime: T1 },
        ],
      }),
    );
    assert.deepEqual(early, {
      phase: "failed",
      terminal: false,
      reason: "BackoffLimitExceeded",
      message: undefined,
      at: T1,
    });
    const met = jobOutcome(
      job({ conditions: [{ type: "SuccessCriteriaMet", status: "True", reason: "CompletionsReached" }] }),
    );
    assert.equal(met.phase, "succeeded");
    assert.equal(met.terminal, false);
    const both = jobOutcome(
      job({
        conditions: [
          { type: "FailureTarget", status: "True", reason: "DeadlineExceeded" },
          { type: "Failed", status: "True", reason: "DeadlineExceeded", lastTransitionTime: new Date(T1) },
        ],
      }),
    );
    assert.equal(both.terminal, true);
    assert.equal(both.at, "2026-01-01T00:01:00.000Z");
  });

  it("builds the per-node result of a successful Job", () => {
    const result = nodeResultFromJob(
      job({
        startTime: T0,
        completionTime: T1,
        succeeded: 1,
        failed: 2,
        conditions: [
          { type: "SuccessCriteriaMet", status: "True", reason: "CompletionsReached" },
          { type: "Complete", status: "True", reason: "CompletionsReached", lastTransitionTime: T1 },
        ],
      }),
    );
    assert.deepEqual(result, {
      node: "worker-1",
      outcome: "succeeded",
      job: "kata-deploy-install-worker-1",
      attempts: 3,
      startedAt: T0,
      finishedAt: T1,
    });
    assert.equal(nodeResultFromJob(job({ active: 1, startTime: T0 })), undefined);
  });

  const failedJob = job({
    startTime: T0,
    failed: 4,
    conditions: [
      {
        type: "FailureTarget",
        status: "True",
        reason: "BackoffLimitExceeded",
        message: "Job has reached the specified backoff limit",
      },
      {
        type: "Failed",
        status: "True",
        reason: "BackoffLimitExceeded",
        message: "Job has reached the specified backoff limit",
        lastTransitionTime: T1,
      },
    ],
  });

  function failedPod(name: string, startTime: string, exitMessage: string): PodLike {
    return {
      metadata: { name },
      status: {
        phase: "Failed",
        startTime,
        initContainerStatuses: [
          {
            name: "host-check",
            state: { terminated: { exitCode: 1, reason: "Error", message: `${exitMessage}\nmore` } },
          },
          { name: "artifacts", state: { waiting: { reason: "PodInitializing" } } },
        ],
        containerStatuses: [{ name: "cri", state: { waiting: { reason: "PodInitializing" } } }],
      },
    };
  }

  it("explains a failed Job with its newest pod's failing container", () => {
    const pods = [
      failedPod("p-old", T0, "old reason"),
      failedPod("p-new", "2026-01-01T00:00:30Z", "no usable virtualization backend"),
    ];
    assert.deepEqual(nodeResultFromJob(failedJob, pods), {
      node: "worker-1",
      outcome: "failed",
      job: "kata-deploy-install-worker-1",
      attempts: 4,
      startedAt: T0,
      finishedAt: T1,
      reason: "BackoffLimitExceeded",
      message: "container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]",
    });
  });

  it("falls back to the Job's condition when the pods are unreadable or gone", () => {
    const result = nodeResultFromJob(failedJob);
    assert.equal(result?.message, "Job has reached the specified backoff limit [BackoffLimitExceeded]");
    assert.equal(
      nodeResultFromJob(failedJob, [])?.message,
      "Job has reached the specified backoff limit [BackoffLimitExceeded]",
    );
  });

  it("describes pods rejected before any container ran, and killed containers", () => {
    const rejected: PodLike = {
      metadata: { name: "p1" },
      status: {
        phase: "Failed",
        reason: "TaintToleration",
        message: "Predicate TaintToleration failed: node(s) had taints",
      },
    };
    assert.equal(
      describePodFailure([rejected]),
      "pod p1 TaintToleration: Predicate TaintToleration failed: node(s) had taints",
    );
    const oom: PodLike = {
      metadata: { name: "p2" },
      status: {
        phase: "Failed",
        containerStatuses: [{ name: "cri", state: { terminated: { exitCode: 137, reason: "OOMKilled" } } }],
      },
    };
    assert.equal(describePodFailure([oom]), "container cri exited 137: OOMKilled");
    assert.equal(describePodFailure([{ status: { phase: "Running" } }]), undefined);
  });

  it("recognises pods that cannot make progress", () => {
    const unschedulable: PodLike = {
      metadata: { name: "p" },
      status: {
        phase: "Pending",
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/1 nodes are available",
          },
        ],
      },
    };
    assert.equal(
      describeStuckPod([unschedulable]),
      "pod p cannot be scheduled (Unschedulable): 0/1 nodes are available",
    );
    const pull: PodLike = {
      metadata: { name: "p" },
      status: {
        phase: "Pending",
        initContainerStatuses: [
          {
            name: "host-check",
            state: { waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "x"' } },
          },
        ],
      },
    };
    assert.equal(
      describeStuckPod([pull]),
      'container host-check of pod p is waiting: ImagePullBackOff: Back-off pulling image "x"',
    );
    const starting: PodLike = {
      metadata: { name: "p" },
      status: {
        phase: "Pending",
        containerStatuses: [{ name: "c", state: { waiting: { reason: "ContainerCreating" } } }],
      },
    };
    assert.equal(describeStuckPod([starting]), undefined);
    assert.equal(describeStuckPod([{ status: { phase: "Running" } }]), undefined);
  });
});
