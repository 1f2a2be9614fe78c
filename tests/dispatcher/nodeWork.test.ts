// The node work's rules as tables (dispatcher-reference.md §3): label changes by multi-install verdict, guarded
// patches, taint matchers, handler and fact checks, the kubelet note, and the ownership decisions.
import { strict as assert } from "node:assert";
import {
  claimChanges,
  demoteChanges,
  guardedLabelPatch,
  handlersVerdict,
  installLabelKeys,
  labelChanges,
  missingNodeFacts,
  nodeFacts,
  parseTaintMatchers,
  releaseChanges,
  sharedLabelVerdict,
  taintsToKeep,
} from "../../kube/nodeLabels";
import {
  decideDispatch,
  goDurationSecs,
  isLiveRun,
  kubeletTimeoutNote,
  otherRunOwners,
  ownerJobOfPod,
} from "../../dispatcher/decide";

const SHARED = "katacontainers.io/kata-runtime";
const keys = installLabelKeys({ multiInstallSuffix: "blue" });
const BLUE = "kata-deploy.katacontainers.io/blue";
const RED = "kata-deploy.katacontainers.io/red";

describe("dispatcher node work rules", () => {
  it("names the labels from the flags' defaults and values", () => {
    assert.deepEqual(installLabelKeys(), {
      shared: SHARED,
      mark: "kata-deploy.katacontainers.io/default",
      markPrefix: "kata-deploy.katacontainers.io/",
      pending: "false",
    });
    assert.deepEqual(
      installLabelKeys({ nodeLabelKey: "x.io/rt", instanceLabelPrefix: "i.io", multiInstallSuffix: "s" }),
      {
        shared: "x.io/rt",
        mark: "i.io/s",
        markPrefix: "i.io/",
        pending: "false",
      },
    );
  });

  it("keeps, demotes or removes the shared label by the other installs' marks (§3.3)", () => {
    const cases: [Record<string, string>, string][] = [
      [{ [SHARED]: "true", [BLUE]: "true" }, "remove"],
      [{ [SHARED]: "true", [BLUE]: "true", [RED]: "true" }, "keep"],
      [{ [SHARED]: "true", [BLUE]: "true", [RED]: "false" }, "demote"],
      [{ [SHARED]: "true", [RED]: "false", "kata-deploy.katacontainers.io/green": "true" }, "keep"],
      [{ [SHARED]: "true", "other.io/x": "true" }, "remove"],
    ];
    for (const [labels, verdict] of cases)
      assert.equal(sharedLabelVerdict(labels, keys), verdict, JSON.stringify(labels));
  });

  it("claims only absent labels, labels to the value, demotes and releases", () => {
    assert.deepEqual(claimChanges(undefined, keys), { [SHARED]: "false", [BLUE]: "false" });
    assert.deepEqual(claimChanges({ [SHARED]: "true" }, keys), { [BLUE]: "false" });
    assert.deepEqual(claimChanges({ [SHARED]: "true", [BLUE]: "" }, keys), {});
    assert.deepEqual(labelChanges({ [SHARED]: "false", [BLUE]: "true" }, keys, "true"), { [SHARED]: "true" });
    assert.deepEqual(demoteChanges({ [SHARED]: "true", [BLUE]: "true" }, keys), {
      [SHARED]: "false",
      [BLUE]: "false",
    });
    assert.deepEqual(demoteChanges({ [SHARED]: "true", [BLUE]: "true", [RED]: "true" }, keys), {
      [BLUE]: "false",
    });
    assert.deepEqual(demoteChanges({ "x.io/y": "z" }, keys), {}, "a node never labelled is left alone");
    assert.deepEqual(releaseChanges({ [SHARED]: "true", [BLUE]: "false" }, keys), {
      [SHARED]: null,
      [BLUE]: null,
    });
    assert.deepEqual(releaseChanges({ [SHARED]: "true", [BLUE]: "true", [RED]: "false" }, keys), {
      [SHARED]: "false",
      [BLUE]: null,
    });
    assert.deepEqual(releaseChanges({ [SHARED]: "true", [RED]: "true" }, keys), {});
  });

  it("writes --node-label-pending-value where the default writes false", () => {
    const custom = installLabelKeys({ multiInstallSuffix: "blue", nodeLabelPendingValue: "pending" });
    assert.deepEqual(claimChanges({}, custom), { [SHARED]: "pending", [BLUE]: "pending" });
    assert.deepEqual(demoteChanges({ [SHARED]: "true", [BLUE]: "true" }, custom), {
      [SHARED]: "pending",
      [BLUE]: "pending",
    });
    assert.equal(sharedLabelVerdict({ [SHARED]: "true", [RED]: "pending" }, custom), "demote");
    assert.equal(sharedLabelVerdict({ [SHARED]: "true", [RED]: "false" }, custom), "keep");
  });

  it("guards label writes by uid and resourceVersion, escaping keys as JSON pointers", () => {
    const node = { metadata: { uid: "u1", resourceVersion: "7", labels: { a: "b" } } };
    assert.deepEqual(guardedLabelPatch(node, { "a~b/c": "x", [BLUE]: null }), [
      { op: "test", path: "/metadata/uid", value: "u1" },
      { op: "test", path: "/metadata/resourceVersion", value: "7" },
      { op: "add", path: "/metadata/labels/a~0b~1c", value: "x" },
      { op: "remove", path: "/metadata/labels/kata-deploy.katacontainers.io~1blue" },
    ]);
    assert.deepEqual(
      guardedLabelPatch({ metadata: { uid: "u", resourceVersion: "1" } }, { [BLUE]: "false" })[2],
      {
        op: "add",
        path: "/metadata/labels",
        value: { [BLUE]: "false" },
      },
    );
  });

  it("matches taints by key or key:effect and keeps the others", () => {
    const matchers = parseTaintMatchers(" a , b:NoSchedule,, :x");
    assert.deepEqual(matchers, [{ key: "a" }, { key: "b", effect: "NoSchedule" }]);
    const taints = [
      { key: "a", effect: "NoExecute" },
      { key: "b", effect: "NoSchedule" },
      { key: "b", effect: "NoExecute" },
      { key: "c", effect: "NoSchedule" },
    ];
    assert.deepEqual(taintsToKeep(taints, matchers), [
      { key: "b", effect: "NoExecute" },
      { key: "c", effect: "NoSchedule" },
    ]);
  });

  it("checks handlers (any one; not reported passes) and node facts (empty is unknown)", () => {
    assert.equal(handlersVerdict(undefined, ["kata-qemu"]), "unanswerable");
    assert.equal(handlersVerdict([], ["kata-qemu"]), "notServing");
    assert.equal(handlersVerdict(["runc", "kata-clh"], ["kata-qemu", "kata-clh"]), "serving");
    const facts = nodeFacts({ status: { nodeInfo: { containerRuntimeVersion: "", machineID: "m" } } });
    assert.deepEqual(facts, { machineID: "m" });
    assert.equal(missingNodeFacts(facts, { machineId: true }), undefined);
    assert.match(
      missingNodeFacts(facts, { runtimeVersion: true, machineId: true }) ?? "",
      /containerRuntimeVersion/,
    );
  });

  it("reads the kubelet's runtimeRequestTimeout as a Go duration and only ever warns", () => {
    assert.equal(goDurationSecs("2m0s"), 120);
    assert.equal(goDurationSecs("1h30m"), 5400);
    assert.equal(goDurationSecs("1.5s"), 1.5);
    assert.equal(goDurationSecs("15"), undefined);
    assert.equal(goDurationSecs("2m junk"), undefined);
    assert.equal(
      kubeletTimeoutNote("n", { kubeletconfig: { runtimeRequestTimeout: "2m0s" } }, 600).level,
      "warn",
    );
    assert.equal(
      kubeletTimeoutNote("n", { kubeletConfig: { runtimeRequestTimeout: "15m0s" } }, 600).level,
      "info",
    );
    assert.match(kubeletTimeoutNote("n", {}, 600).message, /could not be read/);
  });

  it("finds the owner Job of a pod and the live runs of other owners", () => {
    const ref = (kind: string, name: string, uid: string, controller?: boolean) => ({
      kind,
      name,
      uid,
      controller,
    });
    assert.deepEqual(ownerJobOfPod({ metadata: { ownerReferences: [ref("Job", "j", "u", true)] } }), {
      name: "j",
      uid: "u",
    });
    assert.ok(
      "problem" in
        ownerJobOfPod({ metadata: { name: "p", ownerReferences: [ref("ReplicaSet", "r", "u", true)] } }),
    );
    const jobs = [
      { metadata: { ownerReferences: [ref("Job", "mine", "u0")] } },
      { metadata: { ownerReferences: [ref("Job", "hook", "u1")] } },
      { metadata: { ownerReferences: [ref("Job", "hook", "u1")] } },
      { metadata: {} },
    ];
    assert.deepEqual(otherRunOwners(jobs, "u0"), [{ name: "hook", uid: "u1" }]);
    assert.equal(isLiveRun({ uid: "u1" }, { metadata: { uid: "u1" } }), true);
    assert.equal(isLiveRun({ uid: "u1" }, { metadata: { uid: "u2" } }), false, "another Job of that name");
    assert.equal(isLiveRun({ uid: "u1" }, undefined), false);
    assert.equal(
      isLiveRun(
        { uid: "u1" },
        { metadata: { uid: "u1" }, status: { conditions: [{ type: "Complete", status: "True" }] } },
      ),
      false,
    );
  });

  it("fails a node missing required facts and leaves one selected again alone, before any Job", () => {
    const base = {
      node: "n",
      dispatching: true,
      fresh: { metadata: { uid: "u" } },
      selectedUid: "u",
      byName: true,
      selectors: [],
      selectorText: "",
    };
    const [missing] = decideDispatch({ ...base, missingFacts: "the node does not report x" });
    assert.equal(missing.kind === "finishNode" && missing.result.reason, "NodeFactsMissing");
    const [back] = decideDispatch({ ...base, backInSelection: true });
    assert.equal(
      back.kind === "finishNode" && `${back.result.outcome}/${back.result.reason}`,
      "succeeded/BackInSelection",
    );
    assert.deepEqual(decideDispatch(base), [{ kind: "createJob", node: "n" }]);
  });
});
