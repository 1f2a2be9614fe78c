// The Job controller and the simulated kubelet, per outcome program: condition sequences, reasons,
// counters and pod container states (kubernetes-api-facts.md §1, §6, §7), read through client-node.
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import type { FleetNode } from "../../sim";
import type { KubeObject } from "../../sim/types";
import { Clients, jobBody, rawWatch, startWithClients } from "./helpers";

const HOST_CHECK = { name: "host-check", image: "kata-deploy:3.x" };
const INSTALL = { name: "install", image: "kata-deploy:3.x" };

const fleet: FleetNode[] = [
  { name: "ok-1", outcome: { kind: "succeed", durationMs: 20_000 } },
  { name: "flaky-1", outcome: { kind: "failThenSucceed", failures: 2, durationMs: 5_000 } },
  {
    name: "broken-1",
    outcome: {
      kind: "fail",
      failure: { container: "host-check", message: "no usable virtualization backend" },
    },
  },
  { name: "hang-1", outcome: { kind: "hang" } },
  { name: "pull-1", outcome: { kind: "imagePullError" } },
  { name: "reject-1", outcome: { kind: "rejectAdmission" } },
  { name: "noexec-1", taints: [{ key: "maintenance", effect: "NoExecute" }] },
  { name: "gone-1", outcome: { kind: "nodeDeleted", afterMs: 5_000 } },
  { name: "down-1", outcome: { kind: "nodeNotReady", afterMs: 5_000 } },
  { name: "evict-1", outcome: { kind: "hang" } },
  { name: "ttl-1", outcome: { kind: "succeed", durationMs: 1_000 } },
];

type Job = k8s.V1Job;
const conditionTypes = (j: Job): string[] =>
  (j.status?.conditions ?? []).filter((c) => c.status === "True").map((c) => c.type);

describe("kube-sim Job controller and kubelet", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({
      fleet: { nodes: fleet },
      timeScale: 1000,
      jobDurationMs: 10_000,
      podStartDelayMs: 1000,
    });
  });
  after(() => c.sim.close());

  async function finished(name: string, timeoutMs = 15_000): Promise<Job> {
    await c.sim.waitFor(() => {
      const j = c.sim.get("jobs", "default", name);
      const types = (j?.status?.conditions as { type: string; status: string }[] | undefined) ?? [];
      return types.some((t) => (t.type === "Complete" || t.type === "Failed") && t.status === "True");
    }, timeoutMs);
    return c.batch.readNamespacedJob({ name, namespace: "default" });
  }

  async function podsOf(job: string): Promise<k8s.V1Pod[]> {
    return (
      await c.core.listNamespacedPod({
        namespace: "default",
        labelSelector: `batch.kubernetes.io/job-name=${job}`,
      })
    ).items;
  }

  it("succeed: SuccessCriteriaMet, then Complete with completionTime; pod labels, owner and finalizer", async () => {
    const w = rawWatch(
      c.sim,
      "/apis/batch/v1/namespaces/default/jobs?watch=1&fieldSelector=metadata.name%3Dj-ok",
    );
    const created = await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-ok", "ok-1"),
    });
    const job = await finished("j-ok");
    w.close();
    const sequence = w.events.map((e) => conditionTypes(e.object as Job).join("+"));
    const distinct = sequence.filter((s, i) => s !== sequence[i - 1]);
    assert.deepEqual(distinct, ["", "SuccessCriteriaMet", "SuccessCriteriaMet+Complete"]);
    const complete = job.status?.conditions?.find((x) => x.type === "Complete");
    assert.equal(complete?.reason, "CompletionsReached");
    assert.equal(
      job.status?.conditions?.find((x) => x.type === "SuccessCriteriaMet")?.reason,
      "CompletionsReached",
    );
    assert.equal(job.status?.completionTime?.getTime(), complete?.lastTransitionTime?.getTime());
    assert.equal(job.status?.succeeded, 1);
    assert.equal(job.status?.active, undefined);
    assert.equal(job.status?.failed, undefined);
    assert.equal(job.status?.ready, 0);
    assert.equal(job.status?.terminating, 0);
    assert.ok(job.status.startTime!.getTime() <= job.status.completionTime!.getTime());
    // The run lasted at least the program's 20 s of simulated time (real scheduling delays come on top,
    // multiplied by the time scale).
    const runMs = job.status.completionTime!.getTime() - job.status.startTime!.getTime();
    assert.ok(runMs >= 20_000, `run took ${runMs} ms simulated`);
    const [pod] = await podsOf("j-ok");
    assert.equal(pod.status?.phase, "Succeeded");
    assert.equal(pod.metadata?.labels?.["batch.kubernetes.io/controller-uid"], created.metadata?.uid);
    assert.equal(pod.metadata?.labels?.["controller-uid"], created.metadata?.uid);
    assert.equal(pod.metadata?.labels?.["job-name"], "j-ok");
    assert.equal(pod.metadata?.labels?.app, "kata-install");
    assert.deepEqual(
      { ...pod.metadata?.ownerReferences?.[0] },
      {
        apiVersion: "batch/v1",
        kind: "Job",
        name: "j-ok",
        uid: created.metadata?.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    );
    assert.equal(pod.metadata?.finalizers, undefined, "the job-tracking finalizer is removed once counted");
    assert.equal(pod.spec?.nodeName, "ok-1");
    const state = pod.status?.containerStatuses?.[0].state?.terminated;
    assert.equal(state?.exitCode, 0);
    assert.equal(state?.reason, "Completed");
  });

  it("failThenSucceed: retries within backoffLimit after back-off, then Complete", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-flaky", "flaky-1", { spec: { backoffLimit: 3 } }),
    });
    const job = await finished("j-flaky");
    assert.deepEqual(conditionTypes(job), ["SuccessCriteriaMet", "Complete"]);
    assert.equal(job.status?.failed, 2);
    assert.equal(job.status?.succeeded, 1);
    const pods = await podsOf("j-flaky");
    assert.equal(pods.length, 3);
    const byPhase = pods.map((p) => p.status?.phase).sort();
    assert.deepEqual(byPhase, ["Failed", "Failed", "Succeeded"]);
    // Back-off of 10 s then 20 s between attempts (facts §1.5): the pods start at least that far apart.
    const starts = pods.map((p) => p.status!.startTime!.getTime()).sort((a, b) => a - b);
    assert.ok(starts[1] - starts[0] >= 10_000, `second attempt after ${starts[1] - starts[0]} ms`);
    assert.ok(starts[2] - starts[1] >= 20_000, `third attempt after ${starts[2] - starts[1]} ms`);
  });

  it("fail: failed > backoffLimit gives FailureTarget then Failed/BackoffLimitExceeded; init container message kept", async () => {
    const w = rawWatch(
      c.sim,
      "/apis/batch/v1/namespaces/default/jobs?watch=1&fieldSelector=metadata.name%3Dj-broken",
    );
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-broken", "broken-1", {
        spec: { backoffLimit: 2 },
        initContainers: [HOST_CHECK],
        containers: [INSTALL],
      }),
    });
    const job = await finished("j-broken");
    w.close();
    const distinct = w.events
      .map((e) => conditionTypes(e.object as Job).join("+"))
      .filter((s, i, a) => s !== a[i - 1]);
    assert.deepEqual(distinct, ["", "FailureTarget", "FailureTarget+Failed"]);
    const failed = job.status?.conditions?.find((x) => x.type === "Failed");
    assert.equal(failed?.reason, "BackoffLimitExceeded");
    assert.equal(failed?.message, "Job has reached the specified backoff limit");
    assert.equal(job.status?.failed, 3, "backoffLimit 2 fails on the third counted failure");
    assert.equal(job.status?.completionTime, undefined);
    assert.equal(job.status?.active, undefined);
    const pods = await podsOf("j-broken");
    assert.equal(pods.length, 3);
    for (const p of pods) {
      assert.equal(p.status?.phase, "Failed");
      const init = p.status?.initContainerStatuses?.[0];
      assert.equal(init?.name, "host-check");
      assert.equal(init?.state?.terminated?.exitCode, 1);
      assert.equal(init?.state?.terminated?.reason, "Error");
      assert.equal(init?.state?.terminated?.message, "no usable virtualization backend");
      assert.equal(p.status?.containerStatuses?.[0].state?.waiting?.reason, "PodInitializing");
    }
  });

  it("hang: activeDeadlineSeconds gives DeadlineExceeded; the running pod is killed and counted failed", async () => {
    const pods = rawWatch(c.sim, "/api/v1/namespaces/default/pods?watch=1&labelSelector=job-name%3Dj-hang");
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-hang", "hang-1", { spec: { backoffLimit: 6, activeDeadlineSeconds: 60 } }),
    });
    const job = await finished("j-hang");
    assert.deepEqual(conditionTypes(job), ["FailureTarget", "Failed"]);
    assert.equal(job.status?.conditions?.find((x) => x.type === "Failed")?.reason, "DeadlineExceeded");
    assert.equal(
      job.status?.conditions?.find((x) => x.type === "Failed")?.message,
      "Job was active longer than specified deadline",
    );
    assert.equal(job.status?.failed, 1);
    const elapsed =
      job.status.conditions.find((x) => x.type === "FailureTarget")!.lastTransitionTime!.getTime() -
      job.status.startTime!.getTime();
    assert.ok(elapsed >= 60_000 && elapsed < 160_000, `deadline hit after ${elapsed} ms`);
    // The killed pod's last state, as its DELETED event shows it: SIGTERM'd container, phase Failed.
    await c.sim.waitFor(() => c.sim.list("pods", { labelSelector: "job-name=j-hang" }).length === 0, 5000);
    await new Promise((r) => setTimeout(r, 50));
    pods.close();
    const last = pods.events.filter((e) => e.type === "DELETED").map((e) => e.object as k8s.V1Pod);
    assert.equal(last.length, 1);
    assert.equal(last[0].status?.phase, "Failed");
    assert.equal(last[0].status?.containerStatuses?.[0].state?.terminated?.exitCode, 143);
  });

  it("imagePullError: ErrImagePull then ImagePullBackOff while the Job stays active", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-pull", "pull-1", { spec: { activeDeadlineSeconds: 600 } }),
    });
    // The pod and its Job are read together, in one synchronous look at the store, at the first moment the pod
    // shows ImagePullBackOff and the Job controller has counted it: at time scale 1000 the deadline is 600 ms
    // real away, so reads made later (over HTTP, on a busy machine) could already see the deadline's effects.
    type Waiting = { state?: { waiting?: { reason?: string; message?: string } } };
    let seen: { pod: KubeObject; job: KubeObject } | undefined;
    await c.sim.waitFor(() => {
      const [pod] = c.sim.list("pods", { labelSelector: "job-name=j-pull" });
      const job = c.sim.get("jobs", "default", "j-pull");
      const cs = (pod?.status?.containerStatuses as Waiting[] | undefined) ?? [];
      const active = (job?.status as { active?: number } | undefined)?.active;
      if (!pod || !job || cs[0]?.state?.waiting?.reason !== "ImagePullBackOff" || active !== 1) return false;
      seen = structuredClone({ pod, job });
      return true;
    }, 5000);
    const pod = seen!.pod as unknown as k8s.V1Pod;
    const running = seen!.job as unknown as Job;
    assert.equal(pod.status?.phase, "Pending");
    assert.match(
      pod.status?.containerStatuses?.[0].state?.waiting?.message ?? "",
      /^Back-off pulling image "quay\.io\/kata-containers\/kata-deploy:3\.x"$/,
    );
    assert.equal(running.status?.active, 1);
    assert.equal(running.status?.ready, 0);
    assert.deepEqual(conditionTypes(running), []);
    const job = await finished("j-pull");
    assert.equal(job.status?.conditions?.find((x) => x.type === "Failed")?.reason, "DeadlineExceeded");
  });

  it("rejectAdmission and untolerated NoExecute taints fail the pod at admission", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: jobBody("j-reject", "reject-1") });
    await c.batch.createNamespacedJob({ namespace: "default", body: jobBody("j-noexec", "noexec-1") });
    const rejected = await finished("j-reject");
    assert.equal(
      rejected.status?.conditions?.find((x) => x.type === "Failed")?.reason,
      "BackoffLimitExceeded",
    );
    const [rp] = await podsOf("j-reject");
    assert.equal(rp.status?.phase, "Failed");
    assert.equal(rp.status?.reason, "OutOfcpu");
    await finished("j-noexec");
    const [tp] = await podsOf("j-noexec");
    assert.equal(tp.status?.reason, "TaintToleration");
    assert.match(tp.status?.message ?? "", /^Predicate TaintToleration failed: /);
  });

  it("nodeDeleted: PodGC fails the pod (DisruptionTarget), retries fail too, the Job fails", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-gone", "gone-1", { spec: { backoffLimit: 1 } }),
    });
    const job = await finished("j-gone");
    assert.equal(job.status?.conditions?.find((x) => x.type === "Failed")?.reason, "BackoffLimitExceeded");
    assert.equal(job.status?.failed, 2);
    assert.equal(c.sim.get("nodes", undefined, "gone-1"), undefined);
    const gc = c.sim.audit
      .transitions("pods")
      .filter((t) => t.name.startsWith("j-gone-") && t.kind === "deleted");
    assert.ok(gc.length >= 1, "the GC'd pods were removed");
  });

  it("nodeNotReady: unreachable taints, pod NotReady, evicted after its 300 s toleration and left Terminating", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-down", "down-1", { spec: { backoffLimit: 6 } }),
    });
    await c.sim.waitFor(
      () => ((c.sim.get("nodes", undefined, "down-1")?.spec?.taints as unknown[]) ?? []).length === 2,
      5000,
    );
    const node = await c.core.readNode({ name: "down-1" });
    assert.equal(node.status?.conditions?.find((x) => x.type === "Ready")?.status, "Unknown");
    assert.deepEqual(node.spec?.taints?.map((t) => `${t.key}:${t.effect}`).sort(), [
      "node.kubernetes.io/unreachable:NoExecute",
      "node.kubernetes.io/unreachable:NoSchedule",
    ]);
    // The evicted pod counts as failed at once; its replacement comes after the 10 s back-off.
    await c.sim.waitFor(() => {
      const s = c.sim.get("jobs", "default", "j-down")?.status;
      return s?.failed === 1 && s?.active === 1;
    }, 5000);
    const pods = await podsOf("j-down");
    const evicted = pods.find((p) => p.metadata?.deletionTimestamp);
    assert.ok(evicted, "the first pod is Terminating");
    assert.equal(
      evicted?.status?.conditions?.find((x) => x.type === "DisruptionTarget")?.reason,
      "DeletionByTaintManager",
    );
    const job = await c.batch.readNamespacedJob({ name: "j-down", namespace: "default" });
    assert.equal(job.status?.terminating, 1);
    assert.equal(job.status?.active, 1, "a replacement waits Pending on the dead node");
    assert.deepEqual(conditionTypes(job), []);
  });

  it("a running pod is evicted when its node gains an untolerated NoExecute taint", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-evict", "evict-1", { spec: { backoffLimit: 0 } }),
    });
    await c.sim.waitFor(
      () =>
        c.sim.list("pods", { labelSelector: "job-name=j-evict" }).some((p) => p.status?.phase === "Running"),
      5000,
    );
    c.sim.patch("nodes", undefined, "evict-1", { spec: { taints: [{ key: "drain", effect: "NoExecute" }] } });
    const job = await finished("j-evict");
    assert.equal(job.status?.conditions?.find((x) => x.type === "Failed")?.reason, "BackoffLimitExceeded");
    const removed = c.sim.audit
      .transitions("pods")
      .filter((t) => t.name.startsWith("j-evict-") && t.kind === "deleted");
    assert.equal(removed.length, 1, "the evicted pod terminated and was removed");
  });

  it("suspend: Suspended/JobSuspended without pods or startTime; resume sets JobResumed and runs", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-susp", "ok-1", { spec: { suspend: true } }),
    });
    await c.sim.waitFor(
      () => conditionTypes(c.sim.get("jobs", "default", "j-susp") as Job).includes("Suspended"),
      5000,
    );
    const suspended = await c.batch.readNamespacedJob({ name: "j-susp", namespace: "default" });
    const cond = suspended.status?.conditions?.find((x) => x.type === "Suspended");
    assert.equal(cond?.reason, "JobSuspended");
    assert.equal(suspended.status?.startTime, undefined);
    assert.equal((await podsOf("j-susp")).length, 0);
    await c.batch.patchNamespacedJob(
      { name: "j-susp", namespace: "default", body: { spec: { suspend: false } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const job = await finished("j-susp");
    const resumed = job.status?.conditions?.find((x) => x.type === "Suspended");
    assert.equal(resumed?.status, "False");
    assert.equal(resumed?.reason, "JobResumed");
    assert.ok(job.status?.startTime);
    assert.ok(conditionTypes(job).includes("Complete"));
  });

  it("ttlSecondsAfterFinished deletes the finished Job in the foreground, pods first", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: jobBody("j-ttl", "ttl-1", { spec: { ttlSecondsAfterFinished: 5 } }),
    });
    // 5 s simulated are 5 ms real here: the Job may be gone before a read could see it finished.
    await c.sim.waitFor(() => c.sim.get("jobs", "default", "j-ttl") === undefined, 15_000);
    const t = c.sim.audit
      .transitions()
      .filter(
        (x) =>
          (x.resource === "jobs" && x.name === "j-ttl") ||
          (x.resource === "pods" && x.name.startsWith("j-ttl-")),
      );
    const podGone = t.findIndex((x) => x.resource === "pods" && x.kind === "deleted");
    const jobGone = t.findIndex((x) => x.resource === "jobs" && x.kind === "deleted");
    const completed = t.findIndex((x) => x.kind === "jobComplete");
    assert.ok(completed >= 0 && completed < jobGone, "the Job completed before its TTL deleted it");
    assert.ok(podGone >= 0 && jobGone > podGone, "the pod is removed before the Job (foreground)");
    assert.deepEqual(
      c.sim.audit.jobsByNode()["ttl-1"].jobs.map((j) => j.outcome),
      ["succeeded"],
    );
  });
});
