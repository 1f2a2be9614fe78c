import assert from "node:assert/strict";
import {
  DAEMONSET_AUTOMATIC_TOLERATIONS,
  describeTaint,
  firstUntoleratedTaint,
  suggestedToleration,
  tolerates,
  type Taint,
} from "../../kube/tolerations";

// Cases from the upstream dispatcher's node_filter tests (dispatcher-reference.md §4.4).
const CP: Taint = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };

describe("kube/tolerations", () => {
  it("Exists matches regardless of value", () => {
    assert.equal(tolerates({ key: CP.key, operator: "Exists", effect: "NoSchedule" }, CP), true);
  });
  it("an empty key with Exists tolerates everything", () => {
    assert.equal(tolerates({ operator: "Exists" }, CP), true);
    assert.equal(tolerates({ operator: "Exists" }, { key: "custom", value: "v", effect: "NoExecute" }), true);
  });
  it("the effect must match when specified", () => {
    assert.equal(tolerates({ key: CP.key, operator: "Exists", effect: "NoExecute" }, CP), false);
  });
  it("Equal compares values", () => {
    const tol = { key: "dedicated", operator: "Equal", value: "kata" };
    assert.equal(tolerates(tol, { key: "dedicated", value: "kata", effect: "NoSchedule" }), true);
    assert.equal(tolerates(tol, { key: "dedicated", value: "other", effect: "NoSchedule" }), false);
  });
  it("PreferNoSchedule never blocks", () => {
    assert.equal(firstUntoleratedTaint([{ key: "spot", effect: "PreferNoSchedule" }], []), undefined);
  });
  it("a control-plane node is blocked without a toleration and admitted with one", () => {
    assert.deepEqual(firstUntoleratedTaint([CP], DAEMONSET_AUTOMATIC_TOLERATIONS), CP);
    assert.equal(
      firstUntoleratedTaint([CP], [{ key: CP.key, operator: "Exists", effect: "NoSchedule" }]),
      undefined,
    );
  });
  it("cordoned and pressured nodes stay admitted like a DaemonSet", () => {
    const taints = [
      { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
      { key: "node.kubernetes.io/memory-pressure", effect: "NoSchedule" },
    ];
    assert.equal(firstUntoleratedTaint(taints, DAEMONSET_AUTOMATIC_TOLERATIONS), undefined);
  });
  it("nodes without taints are admitted", () => {
    assert.equal(firstUntoleratedTaint(undefined, []), undefined);
  });
  it("describes taints and suggests the toleration that admits them", () => {
    assert.equal(describeTaint(CP), "node-role.kubernetes.io/control-plane:NoSchedule");
    assert.equal(
      describeTaint({ key: "dedicated", value: "kata", effect: "NoSchedule" }),
      "dedicated=kata:NoSchedule",
    );
    const yaml = suggestedToleration(CP);
    assert.match(yaml, /key: node-role.kubernetes.io\/control-plane/);
    assert.match(yaml, /operator: Exists/);
    assert.match(yaml, /effect: NoSchedule/);
  });
});
