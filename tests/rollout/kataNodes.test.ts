import { strict as assert } from "node:assert";
import { kataCorrection, kataNodesNow } from "../../rollout/aggregate";
import type { NodeResult } from "../../kube/jobStatus";
import { nodeWithRecord } from "./nodeRecords";

const release = {
  namespace: "kube-system",
  installOwner: "kata-deploy-install",
  cleanupOwner: "kata-deploy-cleanup",
};
const ok = (node: string): NodeResult => ({ node, outcome: "succeeded", attempts: 1 });
const node = (name: string, record?: { owner: string; outcome: "succeeded" | "failed" }) =>
  nodeWithRecord(name, release.namespace, record);

describe("rollout: kataNodes means where Kata is installed now (issue #13 item 8)", () => {
  it("is the last run's successes while the nodes agree, with nothing stored", () => {
    const results = [ok("a"), ok("b"), { node: "c", outcome: "failed" as const, attempts: 3 }];
    const nodes = [node("a", { owner: release.installOwner, outcome: "succeeded" }), node("b"), node("c")];
    assert.deepEqual(kataCorrection(results, nodes, release), {});
    assert.deepEqual(kataNodesNow(results), ["a", "b"]);
  });

  it("drops deleted and cleaned nodes and those whose install failed since; adds installed nodes outside the results", () => {
    const results = [ok("a"), ok("b"), ok("c"), ok("gone")];
    const nodes = [
      node("a", { owner: release.installOwner, outcome: "succeeded" }),
      node("b", { owner: release.cleanupOwner, outcome: "succeeded" }),
      node("c", { owner: release.installOwner, outcome: "failed" }),
      node("outside", { owner: release.installOwner, outcome: "succeeded" }),
      node("other-release", { owner: "kata-deploy-b-install", outcome: "succeeded" }),
    ];
    const correction = kataCorrection(results, nodes, release);
    assert.deepEqual(correction, { add: ["outside"], remove: ["b", "c", "gone"] });
    assert.deepEqual(kataNodesNow(results, correction), ["a", "outside"]);
  });

  it("daemonset mode (no dispatcher records): the successes that still exist", () => {
    assert.deepEqual(kataCorrection([ok("a"), ok("gone")], [node("a")], undefined), { remove: ["gone"] });
  });
});
