import { strict as assert } from "node:assert";
import { nodeRecordPatch, readNodeRecord, unchangedResult, type NodeRecord } from "../../kube/jobStatus";
import { payloadDigest } from "../../kube/payload";

const template = {
  apiVersion: "batch/v1",
  kind: "Job",
  spec: {
    backoffLimit: 3,
    ttlSecondsAfterFinished: 600,
    template: {
      metadata: { labels: { app: "kata-deploy" } },
      spec: { containers: [{ name: "install", image: "quay.io/kata-containers/kata-deploy:4.0.0" }] },
    },
  },
};

describe("kube/payload: what a per-node Job installs, as one digest", () => {
  it("depends on the pod template only: Job settings and key order change nothing", () => {
    const d = payloadDigest(template);
    assert.match(d, /^p1:[0-9a-f]{32}$/);
    const paced = { ...template, spec: { ...template.spec, backoffLimit: 6, ttlSecondsAfterFinished: 0 } };
    assert.equal(payloadDigest(paced), d);
    const reordered = {
      spec: { template: { spec: template.spec.template.spec, metadata: template.spec.template.metadata } },
    };
    assert.equal(payloadDigest(reordered), d);
  });

  it("changes with anything the pod runs: an image, a label", () => {
    const d = payloadDigest(template);
    const image = structuredClone(template);
    image.spec.template.spec.containers[0].image = "quay.io/kata-containers/kata-deploy:4.0.1";
    assert.notEqual(payloadDigest(image), d);
    const label = structuredClone(template);
    label.spec.template.metadata.labels.app = "other";
    assert.notEqual(payloadDigest(label), d);
  });
});

describe("kube/jobStatus: the payload on a node's record, and when a node is left alone", () => {
  const payload = payloadDigest(template);
  const succeeded = { node: "n1", outcome: "succeeded" as const, attempts: 1, job: "kata-deploy-install-n1" };

  it("a record written with a payload reads back with it; one without clears an earlier payload", () => {
    const patch = nodeRecordPatch(
      { ...succeeded, finishedAt: "2026-12-02T10:00:00Z" },
      "kube-system",
      undefined,
      payload,
    );
    const record = readNodeRecord(
      patch as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } },
    );
    assert.deepEqual(record, {
      outcome: "succeeded",
      finishedAt: "2026-12-02T10:00:00Z",
      error: null, // a merge patch's null removes an earlier error
      job: "kube-system/kata-deploy-install-n1",
      payload,
    });
    assert.equal(
      nodeRecordPatch(succeeded, "kube-system").metadata.annotations["kata-deploy-job-dispatcher/payload"],
      null,
    );
  });

  it("leaves a node alone only when its record says this payload succeeded there", () => {
    const record: NodeRecord = {
      outcome: "succeeded",
      payload,
      job: "kube-system/kata-deploy-install-n1",
      finishedAt: "T",
    };
    const r = unchangedResult("n1", record, payload);
    assert.equal(r?.outcome, "succeeded");
    assert.equal(r?.reason, "Unchanged");
    assert.equal(r?.attempts, 0);
    assert.match(r?.message ?? "", /Job kube-system\/kata-deploy-install-n1 installed the same payload/);
    assert.equal(
      unchangedResult("n1", { ...record, outcome: "failed" }, payload),
      undefined,
      "a failure installs again",
    );
    assert.equal(
      unchangedResult("n1", { ...record, payload: "p1:other" }, payload),
      undefined,
      "another payload",
    );
    assert.equal(
      unchangedResult("n1", { ...record, payload: undefined }, payload),
      undefined,
      "an upstream record",
    );
    assert.equal(unchangedResult("n1", undefined, payload), undefined, "no record");
    assert.equal(unchangedResult("n1", record, undefined), undefined, "skipping not asked for");
  });
});
