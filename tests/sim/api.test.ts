// Conformance of kube-sim's REST surface through @kubernetes/client-node: CRUD, metadata, Status errors,
// patches, and label/field selectors on the wire (every vector).
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { readVectors } from "../vectors";
import { Clients, expectStatus, jobBody, raw, startWithClients } from "./helpers";

interface Vectors {
  parse: { selector: string; valid: boolean }[];
  match: { selector: string; labels?: Record<string, string>; matches: boolean; valid?: boolean }[];
  field_selectors: { parse: { selector: string; valid: boolean }[] };
}
const vectors: Vectors = readVectors("label-selectors.json");

const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

describe("kube-sim REST conformance", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ nodes: 3, seed: 2, timeScale: 1000, jobDurationMs: 5000 });
  });
  after(() => c.sim.close());

  it("serves the initial namespaces and a default ServiceAccount per namespace", async () => {
    const ns = await c.core.listNamespace();
    const names = ns.items.map((n) => n.metadata?.name);
    assert.ok(names.includes("default") && names.includes("kube-system"));
    await c.core.createNamespace({ body: { metadata: { name: "team-a" } } });
    await c.sim.waitFor(() => c.sim.get("serviceaccounts", "team-a", "default") !== undefined, 2000);
  });

  it("creates with uid, resourceVersion, creationTimestamp, generation and generateName", async () => {
    const a = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { generateName: "cm-" }, data: { a: "1" } },
    });
    assert.match(a.metadata?.name ?? "", /^cm-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.match(a.metadata?.uid ?? "", /^[0-9a-f-]{36}$/);
    assert.ok(Number(a.metadata?.resourceVersion) > 0);
    assert.ok(a.metadata?.creationTimestamp instanceof Date);
    const job = await c.batch.createNamespacedJob({
      namespace: "default",
      body: { ...jobBody("gen-1", "nowhere"), spec: { ...jobBody("gen-1", "nowhere").spec!, suspend: true } },
    });
    assert.equal(job.metadata?.generation, 1);
    // Defaults and generated selector/labels (facts §1.8).
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.spec?.completions, 1);
    assert.equal(job.spec?.parallelism, 1);
    assert.equal(job.spec?.completionMode, "NonIndexed");
    assert.equal(job.spec?.podReplacementPolicy, "TerminatingOrFailed");
    assert.deepEqual(job.spec?.selector?.matchLabels, {
      "batch.kubernetes.io/controller-uid": job.metadata?.uid,
    });
    assert.equal(job.spec?.template.metadata?.labels?.["batch.kubernetes.io/job-name"], "gen-1");
    assert.equal(
      job.metadata?.labels?.["job-name"],
      "gen-1",
      "a Job without labels shows the template's generated labels",
    );
    const patched = await c.batch.patchNamespacedJob(
      { name: "gen-1", namespace: "default", body: { spec: { suspend: false } } },
      merge,
    );
    assert.equal(patched.metadata?.generation, 2, "a spec change bumps generation");
    const relabeled = await c.batch.patchNamespacedJob(
      { name: "gen-1", namespace: "default", body: { metadata: { labels: { x: "y" } } } },
      merge,
    );
    assert.equal(relabeled.metadata?.generation, 2, "a metadata change does not");
  });

  it("answers AlreadyExists, NotFound, Conflict and Invalid as Status objects", async () => {
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "dup" } } });
    const exists = await expectStatus(
      c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "dup" } } }),
      409,
      "AlreadyExists",
    );
    assert.equal(exists.message, 'configmaps "dup" already exists');
    assert.equal(exists.details?.kind, "configmaps");
    const missing = await expectStatus(
      c.batch.readNamespacedJob({ name: "nope", namespace: "default" }),
      404,
      "NotFound",
    );
    assert.equal(missing.message, 'jobs.batch "nope" not found');
    assert.equal(missing.details?.group, "batch");
    const cm = await c.core.readNamespacedConfigMap({ name: "dup", namespace: "default" });
    await c.core.replaceNamespacedConfigMap({
      name: "dup",
      namespace: "default",
      body: { ...cm, data: { v: "1" } },
    });
    const stale = await expectStatus(
      c.core.replaceNamespacedConfigMap({
        name: "dup",
        namespace: "default",
        body: { ...cm, data: { v: "2" } },
      }),
      409,
      "Conflict",
    );
    assert.equal(
      stale.message,
      'Operation cannot be fulfilled on configmaps "dup": the object has been modified; please apply your changes to the latest version and try again',
    );
    const badName = await expectStatus(
      c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "Upper_Case" } } }),
      422,
      "Invalid",
    );
    assert.match(
      badName.message ?? "",
      /^ConfigMap "Upper_Case" is invalid: metadata\.name: Invalid value: "Upper_Case": a lowercase RFC 1123 subdomain/,
    );
    assert.equal(badName.details?.causes?.[0]?.field, "metadata.name");
    const badLabel = await expectStatus(
      c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: "l", labels: { "a/b/c": "x", ok: "-bad" } } },
      }),
      422,
      "Invalid",
    );
    assert.match(badLabel.message ?? "", /is invalid: \[metadata\.labels: .*, metadata\.labels: .*\]$/);
    const longJob = await expectStatus(
      c.batch.createNamespacedJob({ namespace: "default", body: jobBody("j".repeat(64), "n") }),
      422,
      "Invalid",
    );
    assert.match(longJob.message ?? "", /^Job\.batch "j{64}" is invalid: spec\.template\.labels/);
    const badNode = await expectStatus(
      c.core.createNode({ body: { metadata: { name: "Worker-A" } } }),
      422,
      "Invalid",
    );
    assert.equal(badNode.details?.kind, "Node");
    await expectStatus(
      c.core.createNamespacedConfigMap({ namespace: "missing-ns", body: { metadata: { name: "x" } } }),
      404,
      "NotFound",
    );
  });

  it("applies merge patches and JSON patches with test operations", async () => {
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "p", labels: { a: "1" } }, data: { k: "v" } },
    });
    const merged = await c.core.patchNamespacedConfigMap(
      { name: "p", namespace: "default", body: { metadata: { labels: { b: "2", a: null } } } },
      merge,
    );
    assert.deepEqual(merged.metadata?.labels, { b: "2" });
    const cur = await c.core.readNamespacedConfigMap({ name: "p", namespace: "default" });
    const ok = await c.core.patchNamespacedConfigMap({
      name: "p",
      namespace: "default",
      body: [
        { op: "test", path: "/metadata/uid", value: cur.metadata?.uid },
        { op: "replace", path: "/data/k", value: "w" },
      ],
    });
    assert.equal(ok.data?.k, "w");
    const failed = await expectStatus(
      c.core.patchNamespacedConfigMap({
        name: "p",
        namespace: "default",
        body: [
          { op: "test", path: "/data/k", value: "v" },
          { op: "remove", path: "/data/k" },
        ],
      }),
      422,
      "Invalid",
    );
    assert.match(failed.message ?? "", /testing value \/data\/k failed/);
    assert.equal(
      (await c.core.readNamespacedConfigMap({ name: "p", namespace: "default" })).data?.k,
      "w",
      "a failed test applies nothing",
    );
    const unsupported = await raw(c.sim, "PATCH", "/api/v1/namespaces/default/configmaps/p", {
      body: "{}",
      contentType: "application/apply-patch+cbor",
    });
    assert.equal(unsupported.status, 415);
  });

  it("keeps status apart from spec writes", async () => {
    await c.core.createNode({
      body: {
        metadata: { name: "status-node" },
        status: { nodeInfo: { machineID: "m1" } as k8s.V1NodeSystemInfo },
      },
    });
    const n = await c.core.readNode({ name: "status-node" });
    await c.core.replaceNode({ name: "status-node", body: { ...n, status: {} } });
    assert.equal(
      (await c.core.readNode({ name: "status-node" })).status?.nodeInfo?.machineID,
      "m1",
      "PUT of the main resource ignores status",
    );
    await c.core.patchNodeStatus(
      { name: "status-node", body: { status: { nodeInfo: { machineID: "m2" } } } },
      merge,
    );
    assert.equal((await c.core.readNode({ name: "status-node" })).status?.nodeInfo?.machineID, "m2");
  });

  it("parses every label selector vector on the wire: valid ⇒ 200, invalid ⇒ 400 BadRequest", async () => {
    for (const v of vectors.parse) {
      const q = new URLSearchParams({ labelSelector: v.selector });
      const res = await raw(c.sim, "GET", `/api/v1/namespaces/default/configmaps?${q}`);
      assert.equal(
        res.status,
        v.valid ? 200 : 400,
        `${JSON.stringify(v.selector)}: ${res.body.slice(0, 200)}`,
      );
      if (!v.valid) assert.equal(JSON.parse(res.body).reason, "BadRequest");
    }
  });

  it("matches every label selector vector on the wire", async () => {
    await c.core.createNamespace({ body: { metadata: { name: "match" } } });
    let checked = 0;
    for (const [i, v] of vectors.match.entries()) {
      if (v.valid === false) continue;
      const name = `m-${i}`;
      try {
        c.sim.create("configmaps", { metadata: { name, namespace: "match", labels: v.labels ?? {} } });
      } catch {
        continue; // labels Kubernetes would not store cannot be matched on a server
      }
      const list = await c.core.listNamespacedConfigMap({
        namespace: "match",
        labelSelector: v.selector,
        fieldSelector: `metadata.name=${name}`,
      });
      assert.equal(list.items.length === 1, v.matches, `${v.selector} on ${JSON.stringify(v.labels)}`);
      checked++;
    }
    assert.ok(checked >= 100, `only ${checked} match vectors checked`);
  });

  it("checks field selectors: every vector's syntax, and the per-kind field names", async () => {
    const podFields = [
      "metadata.name",
      "metadata.namespace",
      "spec.nodeName",
      "status.phase",
      "spec.restartPolicy",
    ];
    for (const v of vectors.field_selectors.parse) {
      const q = new URLSearchParams({ fieldSelector: v.selector });
      const res = await raw(c.sim, "GET", `/api/v1/namespaces/default/pods?${q}`);
      if (!v.valid) {
        assert.equal(res.status, 400, v.selector);
        continue;
      }
      const fields = v.selector
        .split(/(?<!\\),/)
        .filter((t) => t !== "")
        .map((t) => t.split(/!=|==|=/)[0]);
      const supported = fields.every((f) => podFields.includes(f));
      assert.equal(res.status, supported ? 200 : 400, `${v.selector}: ${res.body.slice(0, 200)}`);
      if (!supported) assert.match(JSON.parse(res.body).message, /^field label not supported: /);
    }
    await expectStatus(
      c.batch.listNamespacedJob({ namespace: "default", fieldSelector: "spec.nodeName=x" }),
      400,
      "BadRequest",
    );
    const jobs = await c.batch.listNamespacedJob({
      namespace: "default",
      fieldSelector: "status.successful=0",
    });
    assert.ok(jobs.items.length > 0);
    const nodes = await c.core.listNode({ fieldSelector: "spec.unschedulable=false" });
    assert.ok(nodes.items.length >= 3);
  });

  it("selects pods by spec.nodeName", async () => {
    const nodes = c.sim.list("nodes");
    const node = nodes[0].metadata.name as string;
    await c.batch.createNamespacedJob({ namespace: "default", body: jobBody("by-node", node) });
    await c.sim.waitFor(
      () => c.sim.list("pods", { namespace: "default", labelSelector: "job-name=by-node" }).length === 1,
      5000,
    );
    const onNode = await c.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` });
    assert.ok(onNode.items.some((p) => p.metadata?.labels?.["job-name"] === "by-node"));
    const elsewhere = await c.core.listPodForAllNamespaces({
      fieldSelector: `spec.nodeName=${nodes[1].metadata.name}`,
    });
    assert.ok(!elsewhere.items.some((p) => p.metadata?.labels?.["job-name"] === "by-node"));
  });

  it("answers discovery and /version", async () => {
    const v = await raw(c.sim, "GET", "/version");
    assert.equal(JSON.parse(v.body).major, "1");
    const batch = JSON.parse((await raw(c.sim, "GET", "/apis/batch/v1")).body);
    assert.ok(batch.resources.some((r: { name: string }) => r.name === "jobs/status"));
  });
});
