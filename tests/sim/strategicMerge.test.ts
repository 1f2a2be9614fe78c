// Strategic merge patch: list-maps merged by merge key, sets of finalizers, and the patch directives
// ($patch, $retainKeys, $setElementOrder, $deleteFromPrimitiveList) as kubectl sends them.
import assert from "node:assert/strict";
import { applyStrategicMergePatch } from "../../sim/strategicMerge";

const pod = {
  metadata: { name: "p", finalizers: ["a"], labels: { x: "1" } },
  spec: {
    containers: [
      { name: "main", image: "main:1", env: [{ name: "A", value: "1" }], ports: [{ containerPort: 80 }] },
      { name: "side", image: "side:1" },
    ],
    tolerations: [{ key: "t", operator: "Exists" }],
  },
};

describe("kube-sim strategic merge patch", () => {
  it("merges containers and env by name, and replaces lists without merge keys", () => {
    const out = applyStrategicMergePatch(pod, {
      spec: {
        containers: [{ name: "main", env: [{ name: "B", value: "2" }] }],
        tolerations: [{ key: "u", operator: "Exists" }],
      },
    }) as typeof pod;
    assert.equal(out.spec.containers.length, 2);
    assert.equal(out.spec.containers[0].image, "main:1");
    assert.deepEqual(out.spec.containers[0].env, [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ]);
    assert.deepEqual(out.spec.tolerations, [{ key: "u", operator: "Exists" }]);
  });

  it("deletes list items with $patch: delete and fields with null; orders with $setElementOrder", () => {
    const out = applyStrategicMergePatch(pod, {
      metadata: { labels: { x: null } },
      spec: {
        "$setElementOrder/containers": [{ name: "side" }, { name: "main" }],
        containers: [{ name: "main", env: [{ name: "A", $patch: "delete" }] }],
      },
    }) as typeof pod;
    assert.deepEqual(out.metadata.labels, {});
    assert.deepEqual(
      out.spec.containers.map((c) => c.name),
      ["side", "main"],
    );
    assert.deepEqual(out.spec.containers[1].env, []);
    assert.ok(!JSON.stringify(out).includes("$setElementOrder"), "directives are never stored");
  });

  it("honours $patch: replace, $retainKeys and $deleteFromPrimitiveList; merges finalizers as a set", () => {
    const out = applyStrategicMergePatch(pod, {
      metadata: { finalizers: ["a", "b"], "$deleteFromPrimitiveList/finalizers": ["a"] },
      spec: {
        $retainKeys: ["containers"],
        containers: [{ $patch: "replace" }, { name: "only", image: "o:1" }],
      },
    }) as typeof pod;
    assert.deepEqual(out.metadata.finalizers, ["b"]);
    assert.deepEqual(Object.keys(out.spec), ["containers"]);
    assert.deepEqual(out.spec.containers, [{ name: "only", image: "o:1" }]);
  });
});
