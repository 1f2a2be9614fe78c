// Garbage collection per propagation policy, RBAC allow/deny with kube-apiserver's messages, and
// fault injection (visible, switchable at run time, deterministic per seed).
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { startSimulator } from "../../sim";
import { Clients, clientsFor, expectStatus, jobBody, raw, startWithClients } from "./helpers";

describe("kube-sim garbage collection", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({
      fleet: { nodes: [{ name: "n1", outcome: { kind: "hang" } }] },
      timeScale: 1000,
    });
  });
  after(() => c.sim.close());

  async function runningJob(name: string): Promise<k8s.V1Job> {
    const job = await c.batch.createNamespacedJob({ namespace: "default", body: jobBody(name, "n1") });
    await c.sim.waitFor(
      () =>
        c.sim.list("pods", { labelSelector: `job-name=${name}` }).some((p) => p.status?.phase === "Running"),
      5000,
    );
    return job;
  }
  const podsOf = (name: string) => c.sim.list("pods", { labelSelector: `job-name=${name}` });

  it("a Job DELETE without propagationPolicy orphans its pods (ownerReference stripped, finalizer released)", async () => {
    await runningJob("orphan-me");
    const status = await c.batch.deleteNamespacedJob({
      name: "orphan-me",
      namespace: "default",
    });
    assert.ok(status.status === "Success" || status.metadata !== undefined);
    await c.sim.waitFor(() => c.sim.get("jobs", "default", "orphan-me") === undefined, 3000);
    await c.sim.waitFor(
      () => podsOf("orphan-me").every((p) => !p.metadata.ownerReferences && !p.metadata.finalizers),
      3000,
    );
    const pods = podsOf("orphan-me");
    assert.equal(pods.length, 1);
    assert.equal(pods[0].status?.phase, "Running", "the orphan keeps running");
  });

  it("Background removes the Job at once and its pods afterwards", async () => {
    await runningJob("bg");
    await c.batch.deleteNamespacedJob({ name: "bg", namespace: "default", propagationPolicy: "Background" });
    assert.equal(c.sim.get("jobs", "default", "bg"), undefined, "the owner is gone immediately");
    await c.sim.waitFor(() => podsOf("bg").length === 0, 5000);
  });

  it("Foreground keeps the Job (deletionTimestamp + foregroundDeletion) until its pods are gone", async () => {
    await runningJob("fg");
    // client-node types this answer as V1Status; read it raw to see the object being deleted.
    const answer = await raw(c.sim, "DELETE", "/apis/batch/v1/namespaces/default/jobs/fg", {
      body: { propagationPolicy: "Foreground" },
    });
    assert.equal(answer.status, 200);
    const during = JSON.parse(answer.body) as k8s.V1Job;
    assert.ok(during.metadata?.deletionTimestamp, "the answer is the object being deleted");
    assert.ok(during.metadata?.finalizers?.includes("foregroundDeletion"));
    await c.sim.waitFor(() => c.sim.get("jobs", "default", "fg") === undefined, 5000);
    const t = c.sim.audit
      .transitions()
      .filter(
        (x) =>
          (x.resource === "jobs" && x.name === "fg") || (x.resource === "pods" && x.name.startsWith("fg-")),
      );
    const marked = t.findIndex(
      (x) => x.resource === "jobs" && x.resourceVersion === during.metadata?.resourceVersion,
    );
    const podGone = t.findIndex((x) => x.resource === "pods" && x.kind === "deleted");
    const jobGone = t.findIndex((x) => x.resource === "jobs" && x.kind === "deleted");
    assert.ok(
      marked >= 0 && marked < podGone && podGone < jobGone,
      "marked, then pods removed, then the Job",
    );
  });

  it("honours preconditions.uid (409 Conflict on mismatch) and collects dependents of any kind", async () => {
    const owner = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "owner" } },
    });
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: {
          name: "dependent",
          ownerReferences: [
            { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! },
          ],
        },
      },
    });
    const conflict = await expectStatus(
      c.core.deleteNamespacedConfigMap({
        name: "owner",
        namespace: "default",
        body: { preconditions: { uid: "00000000-0000-0000-0000-000000000000" } },
      }),
      409,
      "Conflict",
    );
    assert.match(conflict.message ?? "", /Precondition failed: UID in precondition: 0{8}-/);
    await c.core.deleteNamespacedConfigMap({
      name: "owner",
      namespace: "default",
      body: { preconditions: { uid: owner.metadata!.uid! } },
    });
    await c.sim.waitFor(() => c.sim.get("configmaps", "default", "dependent") === undefined, 3000);
  });

  it("deleting a namespace deletes its content, then the namespace", async () => {
    await c.core.createNamespace({ body: { metadata: { name: "doomed" } } });
    await c.core.createNamespacedConfigMap({ namespace: "doomed", body: { metadata: { name: "x" } } });
    // A finalizer on one object holds the namespace in Terminating.
    await c.core.createNamespacedConfigMap({
      namespace: "doomed",
      body: { metadata: { name: "held", finalizers: ["example.com/hold"] } },
    });
    const ns = (await c.core.deleteNamespace({ name: "doomed" })) as k8s.V1Namespace;
    assert.equal(ns.status?.phase, "Terminating");
    await c.sim.waitFor(() => c.sim.get("configmaps", "doomed", "x") === undefined, 3000);
    const refused = await expectStatus(
      c.core.createNamespacedConfigMap({ namespace: "doomed", body: { metadata: { name: "y" } } }),
      403,
      "Forbidden",
    );
    assert.match(refused.message ?? "", /because it is being terminated$/);
    assert.ok(c.sim.get("namespaces", undefined, "doomed"));
    c.sim.patch("configmaps", "doomed", "held", { metadata: { finalizers: null } });
    await c.sim.waitFor(() => c.sim.get("namespaces", undefined, "doomed") === undefined, 3000);
  });
});

describe("kube-sim authentication and RBAC", function () {
  this.timeout(300_000);
  let c: Clients;
  let sa: Omit<Clients, "sim">;
  before(async () => {
    c = await startWithClients({ nodes: 2, authz: true });
    await c.core.createNamespace({ body: { metadata: { name: "kata" } } });
    await c.core.createNamespacedServiceAccount({
      namespace: "kata",
      body: { metadata: { name: "dispatcher" } },
    });
    await c.rbac.createNamespacedRole({
      namespace: "kata",
      body: {
        metadata: { name: "jobs" },
        rules: [
          { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "delete"] },
          { apiGroups: [""], resources: ["configmaps"], verbs: ["get"], resourceNames: ["only-this"] },
        ],
      },
    });
    await c.rbac.createNamespacedRoleBinding({
      namespace: "kata",
      body: {
        metadata: { name: "jobs" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "jobs" },
        subjects: [{ kind: "ServiceAccount", name: "dispatcher", namespace: "kata" }],
      },
    });
    await c.rbac.createClusterRole({
      body: {
        metadata: { name: "node-reader" },
        rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "list"] }],
      },
    });
    await c.rbac.createClusterRoleBinding({
      body: {
        metadata: { name: "node-reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "node-reader" },
        subjects: [{ kind: "ServiceAccount", name: "dispatcher", namespace: "kata" }],
      },
    });
    await c.core.createNamespacedConfigMap({ namespace: "kata", body: { metadata: { name: "only-this" } } });
    await c.core.createNamespacedConfigMap({ namespace: "kata", body: { metadata: { name: "other" } } });
    sa = clientsFor(c.sim.kubeconfigFor("kata", "dispatcher"));
  });
  after(() => c.sim.close());

  it("allows exactly what the bindings grant", async () => {
    await sa.batch.createNamespacedJob({ namespace: "kata", body: jobBody("allowed", "nowhere") });
    assert.equal((await sa.batch.listNamespacedJob({ namespace: "kata" })).items.length, 1);
    assert.ok((await sa.core.listNode()).items.length >= 2);
    await sa.core.readNamespacedConfigMap({ name: "only-this", namespace: "kata" });
    const who = c.sim.audit.requests({ resource: "jobs", verb: "create" }).at(-1);
    assert.equal(who?.user, "system:serviceaccount:kata:dispatcher");
  });

  it("denies the rest with 403 Forbidden and kube-apiserver's message", async () => {
    const pods = await expectStatus(sa.core.listNamespacedPod({ namespace: "kata" }), 403, "Forbidden");
    assert.equal(
      pods.message,
      'pods is forbidden: User "system:serviceaccount:kata:dispatcher" cannot list resource "pods" in API group "" in the namespace "kata"',
    );
    const patch = await expectStatus(
      sa.core.patchNode({ name: c.sim.list("nodes")[0].metadata.name!, body: [] }),
      403,
      "Forbidden",
    );
    assert.match(
      patch.message ?? "",
      /^nodes ".*" is forbidden: User "system:serviceaccount:kata:dispatcher" cannot patch resource "nodes" in API group "" at the cluster scope$/,
    );
    await expectStatus(sa.batch.listNamespacedJob({ namespace: "default" }), 403, "Forbidden");
    const other = await expectStatus(
      sa.core.readNamespacedConfigMap({ name: "other", namespace: "kata" }),
      403,
      "Forbidden",
    );
    assert.equal(
      other.message,
      'configmaps "other" is forbidden: User "system:serviceaccount:kata:dispatcher" cannot get resource "configmaps" in API group "" in the namespace "kata"',
    );
    await expectStatus(sa.core.listNamespacedConfigMap({ namespace: "kata" }), 403, "Forbidden");
    const status = await expectStatus(
      sa.batch.patchNamespacedJobStatus({ name: "allowed", namespace: "kata", body: [] }),
      403,
      "Forbidden",
    );
    assert.match(status.message ?? "", /cannot patch resource "jobs\/status" in API group "batch"/);
  });

  it("answers 401 without a token or with an unknown one", async () => {
    assert.equal((await raw(c.sim, "GET", "/api/v1/nodes", { token: null })).status, 401);
    const bad = await raw(c.sim, "GET", "/api/v1/nodes", { token: "nope" });
    assert.equal(bad.status, 401);
    assert.equal(JSON.parse(bad.body).reason, "Unauthorized");
  });
});

describe("kube-sim fault injection", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ nodes: 20, seed: 5 });
  });
  after(() => c.sim.close());
  afterEach(() => c.sim.faults.clear());

  it("injects 503s and 429s with Retry-After on chosen verbs/resources only, switchable at run time", async () => {
    c.sim.faults.set({ rules: [{ verbs: ["list"], resources: ["nodes"], errorRate: 1, errorCodes: [503] }] });
    await expectStatus(c.core.listNode(), 503, "ServiceUnavailable");
    await c.core.listNamespacedConfigMap({ namespace: "default" });
    c.sim.faults.set({
      rules: [{ resources: ["nodes"], errorRate: 1, errorCodes: [429], retryAfterSeconds: 3 }],
    });
    const r = await raw(c.sim, "GET", "/api/v1/nodes");
    assert.equal(r.status, 429);
    assert.equal(r.headers["retry-after"], "3");
    assert.equal(JSON.parse(r.body).details.retryAfterSeconds, 3);
    c.sim.faults.set({
      rules: [{ resources: ["nodes"], errorRate: 1, errorCodes: [429], plainText429: true }],
    });
    const plain = await raw(c.sim, "GET", "/api/v1/nodes");
    assert.equal(plain.status, 429);
    assert.equal(plain.body.trim(), "Too many requests, please try again later.");
    c.sim.faults.clear();
    assert.ok((await c.core.listNode()).items.length === 20);
    const injected = c.sim.faults.injected();
    assert.equal(injected["error:503"], 1);
    assert.equal(injected["error:429"], 2);
    assert.equal(
      c.sim.audit.requests({ resource: "nodes", code: 429 }).length,
      2,
      "the audit log records injected answers",
    );
  });

  it("adds latency, resets connections and expires continue tokens", async () => {
    c.sim.faults.set({ rules: [{ verbs: ["get"], latencyMs: 150 }] });
    const t0 = Date.now();
    await c.core.readNamespace({ name: "default" });
    assert.ok(Date.now() - t0 >= 140);
    c.sim.faults.set({ rules: [{ verbs: ["get"], resetRate: 1 }] });
    await assert.rejects(raw(c.sim, "GET", "/api/v1/namespaces/default"));
    c.sim.faults.clear();
    const page = await c.core.listNode({ limit: 5 });
    c.sim.faults.set({ rules: [{ verbs: ["list"], expireContinueRate: 1 }] });
    await expectStatus(c.core.listNode({ limit: 5, _continue: page.metadata?._continue }), 410, "Expired");
    await c.core.listNode({ limit: 5 });
  });

  it("is deterministic for a seed and request order", async () => {
    const pattern = async (): Promise<string> => {
      const sim = await startSimulator({
        seed: 11,
        faults: { rules: [{ verbs: ["get"], errorRate: 0.3, errorCodes: [500, 503] }] },
      });
      let out = "";
      for (let i = 0; i < 60; i++)
        out += String((await raw(sim, "GET", "/api/v1/namespaces/default")).status)[0];
      await sim.close();
      return out;
    };
    const a = await pattern();
    const b = await pattern();
    assert.equal(a, b);
    assert.ok(a.includes("5") && a.includes("2"), a);
  });
});
