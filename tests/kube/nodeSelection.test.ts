// The one node-selection rule (kube/nodeSelection.ts) that the dispatcher, the rollout's waiter and `npm start`
// admit through: names win, else the union of selectors, then admission by taints as a DaemonSet pod's.
import assert from "node:assert/strict";
import {
  admitSelected,
  normalizeSelection,
  selectionArgs,
  selectionQueries,
  withSelectionArgs,
  type SelectableNode,
} from "../../kube/nodeSelection";
import { DAEMONSET_AUTOMATIC_TOLERATIONS } from "../../kube/tolerations";

const node = (name: string, extra: Partial<SelectableNode["metadata"]> = {}, taints = [] as never[]) => ({
  metadata: { name, ...extra },
  spec: { taints },
});

describe("kube: node selection", () => {
  it("names win over selectors; the LISTs are one per selector, or one of every node", () => {
    assert.deepEqual(normalizeSelection({ nodes: [" b", "a", "b", ""], selectors: ["x=y"] }), {
      nodes: ["a", "b"],
    });
    assert.deepEqual(normalizeSelection({ nodes: [], selectors: ["x=y"] }), { selectors: ["x=y"] });
    assert.deepEqual(normalizeSelection({}), {});
    assert.deepEqual(selectionQueries({ nodes: ["a"], selectors: ["x=y"] }), [undefined]);
    assert.deepEqual(selectionQueries({ selectors: ["x=y", "z"] }), ["x=y", "z"]);
    assert.deepEqual(selectionQueries({}), [undefined]);
  });

  it("becomes the dispatcher's flags in one place, and replaces a command line's selection", () => {
    assert.deepEqual(selectionArgs({ nodes: ["a", "b"] }), ["--nodes=a,b"]);
    assert.deepEqual(selectionArgs({ selectors: ["x=y", "!z"] }), [
      "--node-selector=x=y",
      "--node-selector=!z",
    ]);
    assert.deepEqual(selectionArgs({}), []);
    const args = ["--job-template=/t", "--node-selector=x=y", "--parallelism=5"];
    const healed = withSelectionArgs(args, { nodes: ["n2", "n1"] });
    assert.deepEqual(healed, ["--job-template=/t", "--parallelism=5", "--nodes=n2,n1"]);
  });

  it("admits the union once per name, sorted, skipping untolerated NoSchedule/NoExecute taints", () => {
    const tainted = node("c", {}, [{ key: "gpu", effect: "NoSchedule" }] as never[]);
    const preferred = node("d", {}, [{ key: "soft", effect: "PreferNoSchedule" }] as never[]);
    const unreachable = node("e", {}, [
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute" },
    ] as never[]);
    const listed = [
      [node("b"), tainted],
      [node("a"), node("b"), preferred, unreachable],
    ];
    const r = admitSelected(listed, { selectors: ["s1", "s2"] }, DAEMONSET_AUTOMATIC_TOLERATIONS);
    assert.deepEqual(
      r.matched.map((n) => n.metadata.name),
      ["a", "b", "c", "d", "e"],
    );
    assert.deepEqual(
      r.admitted.map((n) => n.metadata.name),
      ["a", "b", "d", "e"],
    );
    assert.deepEqual(
      r.skipped.map((s) => [s.name, s.taint.key]),
      [["c", "gpu"]],
    );
    assert.equal(admitSelected(listed, {}, [], { ignoreTaints: true }).admitted.length, 5);
  });

  it("picks explicit names from a list of every node, and can leave out nodes being deleted", () => {
    const all = [[node("a"), node("b", { deletionTimestamp: "2026-01-01T00:00:00Z" }), node("c")]];
    const names = { nodes: ["c", "b", "ghost"] };
    assert.deepEqual(
      admitSelected(all, names, []).admitted.map((n) => n.metadata.name),
      ["b", "c"],
    );
    assert.deepEqual(
      admitSelected(all, names, [], { skipDeleting: true }).admitted.map((n) => n.metadata.name),
      ["c"],
    );
  });
});
