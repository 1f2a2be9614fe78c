import { strict as assert } from "node:assert";
import {
  deletesOn,
  deletionsAfter,
  hookOf,
  hookWeight,
  keptOnUninstall,
  lessByKind,
  phaseHooks,
  splitHooks,
  type Hook,
  type HookObject,
  type HookPhase,
} from "../../kube/helmHooks";
import { helmObjects } from "../chart/fixtures/objects";

function obj(kind: string, name: string, annotations: Record<string, string> = {}): HookObject {
  return { apiVersion: kind === "Job" ? "batch/v1" : "v1", kind, metadata: { name, annotations } };
}
function hook(kind: string, name: string, event: string, weight?: string, policy?: string): HookObject {
  return obj(kind, name, {
    "helm.sh/hook": event,
    ...(weight === undefined ? {} : { "helm.sh/hook-weight": weight }),
    ...(policy === undefined ? {} : { "helm.sh/hook-delete-policy": policy }),
  });
}
const names = (hs: Hook[]) => hs.map((h) => `${h.kind}/${h.name}`);

describe("kube/helmHooks: Helm's hook rules (pkg/action/hooks.go, release/v1/util)", () => {
  it("weights as Go's strconv.Atoi reads them, 0 when it fails", () => {
    const table: [string | undefined, number][] = [
      ["5", 5],
      ["-5", -5],
      ["+3", 3],
      ["007", 7],
      [" 5", 0], // Atoi does not trim
      ["5.0", 0],
      ["", 0],
      ["x", 0],
      ["99999999999999999999", 0], // beyond int64
      [undefined, 0],
    ];
    for (const [text, want] of table) assert.equal(hookWeight(text), want, JSON.stringify(text));
  });

  it("events: comma lists, trimmed and lower-cased; test-success is test; one unknown event drops the object", () => {
    const table: [string, HookPhase[] | "unknown"][] = [
      ["post-install,post-upgrade", ["post-install", "post-upgrade"]],
      [" Pre-Delete ", ["pre-delete"]],
      ["test-success", ["test"]],
      ["post-install,bogus", "unknown"],
      ["", "unknown"],
    ];
    for (const [events, want] of table) {
      const h = hookOf(hook("Job", "j", events));
      assert.deepEqual(h === "unknown" ? h : h?.phases, want, events);
    }
    assert.equal(hookOf(obj("ConfigMap", "plain")), undefined);
    const split = splitHooks([
      obj("ConfigMap", "a"),
      hook("Job", "b", "pre-install"),
      hook("Job", "c", "nope"),
    ]);
    assert.deepEqual(
      split.resources.map((o) => o.metadata?.name),
      ["a"],
    );
    assert.deepEqual(names(split.hooks), ["Job/b"]);
    assert.deepEqual(
      split.skipped.map((o) => o.metadata?.name),
      ["c"],
    );
  });

  it("kind order: InstallOrder, unknown kinds last and by name among themselves", () => {
    assert.ok(lessByKind("ServiceAccount", "ClusterRole"));
    assert.ok(lessByKind("ClusterRoleBinding", "Job"));
    assert.ok(lessByKind("Job", "Zebra"));
    assert.ok(!lessByKind("Zebra", "Job"));
    assert.ok(lessByKind("Apple", "Zebra"));
    assert.ok(!lessByKind("Apple", "Apple"));
  });

  it("phase order: weight, then name, then kind (stable pre-sort by kind)", () => {
    const hooks = splitHooks([
      hook("Job", "b", "pre-delete", "0"),
      hook("Job", "a", "pre-delete", "0"),
      hook("Job", "z", "pre-delete", "-1"),
      hook("ClusterRoleBinding", "same", "pre-delete,post-delete", "2"),
      hook("Job", "same", "pre-delete", "2"),
      hook("ServiceAccount", "same", "pre-delete", "2"),
      hook("Job", "other-phase", "post-install", "-100"),
      hook("Job", "unweighted", "pre-delete"),
    ]).hooks;
    assert.deepEqual(names(phaseHooks(hooks, "pre-delete")), [
      "Job/z",
      "Job/a",
      "Job/b",
      "Job/unweighted",
      "ServiceAccount/same",
      "ClusterRoleBinding/same",
      "Job/same",
    ]);
    assert.deepEqual(names(phaseHooks(hooks, "post-delete")), ["ClusterRoleBinding/same"]);
    assert.deepEqual(names(phaseHooks(hooks, "post-install")), ["Job/other-phase"]);
    assert.deepEqual(names(phaseHooks(hooks, "pre-upgrade")), []);
  });

  it("delete policies: before-hook-creation by default; listed ones only otherwise; never a CRD", () => {
    const table: [string | undefined, boolean, boolean, boolean][] = [
      // policy annotation, before-hook-creation, hook-succeeded, hook-failed
      [undefined, true, false, false],
      ["hook-succeeded", false, true, false],
      ["before-hook-creation,hook-succeeded", true, true, false],
      [" Hook-Failed ", false, false, true],
      ["hook-succeeded,hook-failed", false, true, true],
    ];
    for (const [policy, before, succeeded, failed] of table) {
      const h = hookOf(hook("Job", "j", "post-install", "0", policy)) as Hook;
      assert.deepEqual(
        [deletesOn(h, "before-hook-creation"), deletesOn(h, "hook-succeeded"), deletesOn(h, "hook-failed")],
        [before, succeeded, failed],
        String(policy),
      );
    }
    const crd = hookOf(hook("CustomResourceDefinition", "c", "pre-install", "0", "hook-succeeded")) as Hook;
    assert.equal(deletesOn(crd, "hook-succeeded"), false);
  });

  it("deletions after a phase: reverse order on success; the failed hook, then earlier succeeded ones", () => {
    const ordered = phaseHooks(
      splitHooks([
        hook("Job", "one", "pre-delete", "1", "hook-succeeded"),
        hook("Job", "two", "pre-delete", "2"),
        hook("Job", "three", "pre-delete", "3", "hook-succeeded,hook-failed"),
        hook("Job", "four", "pre-delete", "4", "hook-succeeded"),
      ]).hooks,
      "pre-delete",
    );
    assert.deepEqual(names(deletionsAfter(ordered)), ["Job/four", "Job/three", "Job/one"]);
    assert.deepEqual(names(deletionsAfter(ordered, 2)), ["Job/three", "Job/one"]);
    assert.deepEqual(names(deletionsAfter(ordered, 1)), ["Job/one"]);
    assert.deepEqual(names(deletionsAfter(ordered, 0)), []);
  });

  it("resource-policy keep, trimmed and any case", () => {
    assert.ok(keptOnUninstall(obj("ServiceAccount", "s", { "helm.sh/resource-policy": " Keep " })));
    assert.ok(!keptOnUninstall(obj("ServiceAccount", "s", { "helm.sh/resource-policy": "delete" })));
    assert.ok(!keptOnUninstall(obj("ServiceAccount", "s")));
  });

  it("Helm's own render of chart 4.0.0 (job mode): each phase's hooks in Helm's order, keep objects found", () => {
    const rendered = helmObjects("4.0.0", "job-defaults") as HookObject[];
    const { hooks, resources, skipped } = splitHooks(rendered);
    assert.deepEqual(skipped, []);
    assert.deepEqual(names(phaseHooks(hooks, "post-install")), ["Job/kata-deploy-install-dispatcher"]);
    assert.deepEqual(names(phaseHooks(hooks, "post-upgrade")), ["Job/kata-deploy-install-dispatcher"]);
    assert.deepEqual(names(phaseHooks(hooks, "pre-delete")), ["Job/kata-deploy-cleanup-dispatcher"]);
    // Equal weights (-5) go by name: "cleanup-rb" < "cleanup-role" < "sa-cleanup".
    assert.deepEqual(names(phaseHooks(hooks, "post-delete")), [
      "ClusterRoleBinding/kata-deploy-cleanup-rb",
      "ClusterRole/kata-deploy-cleanup-role",
      "ServiceAccount/kata-deploy-sa-cleanup",
      "Job/kata-deploy-rb-cleanup",
    ]);
    const postDelete = phaseHooks(hooks, "post-delete");
    assert.deepEqual(names(deletionsAfter(postDelete)), [
      "Job/kata-deploy-rb-cleanup",
      "ServiceAccount/kata-deploy-sa-cleanup",
      "ClusterRole/kata-deploy-cleanup-role",
      "ClusterRoleBinding/kata-deploy-cleanup-rb",
    ]);
    assert.deepEqual(
      resources.filter(keptOnUninstall).map((o) => `${o.kind}/${o.metadata?.name}`),
      ["ServiceAccount/kata-deploy-sa", "ClusterRole/kata-deploy-role", "ClusterRoleBinding/kata-deploy-rb"],
    );
  });
});
