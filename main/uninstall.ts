// `npm start -- --destroy`: what `pulumi destroy` of KataDeploy does, in the engine's order and with the same code:
// the rollout's delete (pre-delete hooks: the cleanup dispatcher in job mode), the deletion of the objects the install
// applied (reverse order; the Namespace and the chart's `keep` objects left out, as helm.v4.Chart retains them), the
// release hooks' delete (post-delete hooks, then the kept objects), and the Namespace last. The demo keeps no state:
// it finds the release from the same plan and reads which of its objects exist before it starts.
import type { K8sObject } from "../chart/k8s";
import type { Assembly } from "../components/assemble";
import { outputsWithoutRun, rolloutProvider } from "../rollout/provider";
import type { RolloutInputs } from "../rollout/types";
import { deleteAndWaitGone, deleteObjects, describeObject, findObjects, type Target } from "./cluster";
import { eligibleNodes, observeJobs, showProgress } from "./progress";

/** Where an uninstall stopped: the step, and the rollout's message. */
export interface UninstallFailure {
  step: "cleanup" | "delete" | "post-delete";
  message: string;
}

/** The cleanup dispatcher's per-node Jobs as the cluster showed them, or why no cleanup dispatcher ran. */
export type CleanupReport = { nodes: number; cleaned: number; failed: number } | { note: string };

/** What `--destroy` prints (as JSON with --json). */
export interface UninstallSummary {
  release: { namespace: string; name: string };
  mode: string;
  /** Nothing of the release was found (a Namespace alone does not count): nothing was changed. */
  nothingFound: boolean;
  /** Step 1's cleanup (main/README.md numbers the steps); absent when the step did not run. */
  cleanup?: CleanupReport;
  /** The release's objects deleted by the demo (step 2), in the order deleted. */
  deleted: string[];
  /** Objects of the release that were not there (404). */
  alreadyAbsent: string[];
  /** Objects of kinds the cluster does not serve (the install skipped them too). */
  notServed: string[];
  /** The chart's `keep` objects the release hooks' delete removed. */
  keptRemoved: string[];
  namespaceDeleted: boolean;
  /** The release's Namespace (when the plan creates it) existed when the uninstall began. */
  namespacePresent: boolean;
  /** Objects the install applies that still answer a GET after the uninstall; absent when they could not be read. */
  stillPresent?: string[];
  failure?: UninstallFailure;
}

function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ""}/${name}`;
}

function cleanupLine(c: CleanupReport | undefined): string | undefined {
  if (!c) return undefined;
  if ("note" in c) return `cleanup: ${c.note}`;
  return `cleanup dispatcher: ${c.cleaned} of ${c.nodes} nodes cleaned, ${c.failed} failed`;
}

/** The summary a person reads (pure). */
export function uninstallText(s: UninstallSummary): string {
  const lines = [
    `kata-deploy uninstall of release ${s.release.namespace}/${s.release.name} (${s.mode} mode)`,
  ];
  if (s.nothingFound) {
    lines.push("  nothing of the release was found: nothing to uninstall, nothing changed");
    if (s.namespacePresent) lines.push(`  namespace ${s.release.namespace} exists and is left as it is`);
    return lines.join("\n");
  }
  const cleanup = cleanupLine(s.cleanup);
  if (cleanup) lines.push(`  ${cleanup}`);
  const notes = [
    s.alreadyAbsent.length ? `${s.alreadyAbsent.length} already absent` : "",
    s.notServed.length ? `${s.notServed.length} of kinds not served here skipped` : "",
  ].filter(Boolean);
  if (s.deleted.length || notes.length)
    lines.push(
      `  deleted ${s.deleted.length} objects of the release${notes.length ? ` (${notes.join("; ")})` : ""}`,
    );
  if (s.keptRemoved.length)
    lines.push(`  removed after the post-delete hooks, kept by the chart: ${s.keptRemoved.join(", ")}`);
  if (s.namespaceDeleted) lines.push(`  deleted namespace ${s.release.namespace}`);
  if (s.failure) lines.push(`  failed at the ${s.failure.step} step: ${s.failure.message}`);
  if (s.stillPresent === undefined) lines.push("  could not check what is left");
  else
    lines.push(
      s.stillPresent.length
        ? `  still present: ${s.stillPresent.join(", ")}`
        : "  nothing the install applies is left: each object answers 404",
    );
  return lines.join("\n");
}

export interface UninstallRun {
  target: Target;
  assembly: Assembly;
  inputs: RolloutInputs;
  /** Show the progress line (not with --json). */
  showProgress: boolean;
}

/** Step 1: the rollout's delete, with the cleanup's per-node Jobs observed for the progress line and the counts. */
async function rolloutDelete(run: UninstallRun): Promise<{ cleanup: CleanupReport; failure?: string }> {
  const { inputs, target } = run;
  const cleanup = inputs.mode === "job" && inputs.cleanupOnDestroy ? inputs.cleanup : undefined;
  let report: CleanupReport =
    inputs.mode === "daemonset"
      ? { note: "by the DaemonSet's pods as they stop (daemonset mode runs no cleanup dispatcher)" }
      : { note: "skipped (rollout.cleanupOnDestroy is off): the nodes keep Kata" };
  const total = cleanup ? await eligibleNodes(target.kubeConfig, inputs, "cleanup") : 0;
  const observer = cleanup
    ? await observeJobs(target.kubeConfig, inputs.namespace, cleanup.ownerValue, total)
    : undefined;
  const stopProgress = observer ? showProgress(observer, run.showProgress) : () => undefined;
  let failure: string | undefined;
  try {
    await rolloutProvider.delete("", outputsWithoutRun(inputs));
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
  } finally {
    stopProgress();
    await observer?.stop();
  }
  if (observer) {
    const c = observer.counts();
    report = { nodes: total, cleaned: c.done - c.failed, failed: c.failed };
  }
  return { cleanup: report, failure };
}

/**
 * Uninstalls the release of `run.assembly` from the target and says what happened. Throws when the cluster cannot be
 * read (the caller's "could not run"); a failed step ends the uninstall there, as the engine stops a destroy.
 */
export async function uninstall(run: UninstallRun): Promise<UninstallSummary> {
  const { assembly, inputs, target } = run;
  const kc = target.kubeConfig;
  const kept = new Set(
    (inputs.releaseObjects ?? []).filter((r) => r.keep).map((r) => objectKey(r.kind, r.namespace, r.name)),
  );
  const isKept = (o: K8sObject) => kept.has(objectKey(o.kind, o.metadata.namespace, String(o.metadata.name)));
  const isNamespace = (o: K8sObject) => o === assembly.namespace;

  const found = await findObjects(kc, assembly.objects);
  const releasePresent = found.present.filter((o) => !isNamespace(o) && !isKept(o));
  const keptPresent = found.present.filter(isKept);
  const namespacePresent = found.present.some(isNamespace);
  const summary: UninstallSummary = {
    release: { namespace: assembly.release.namespace, name: assembly.release.name },
    mode: inputs.mode,
    // The Namespace alone is not the release's: it may hold anything else; it is left as it is.
    nothingFound: releasePresent.length === 0 && keptPresent.length === 0,
    deleted: [],
    alreadyAbsent: [],
    notServed: found.unserved.map(describeObject),
    keptRemoved: [],
    namespaceDeleted: false,
    namespacePresent,
  };
  if (summary.nothingFound) return summary;
  // Step 5, after the last step that ran: which of the objects the install applies still answer a GET.
  const verified = async (failure?: UninstallFailure): Promise<UninstallSummary> => {
    const after = await findObjects(kc, [...found.present, ...found.absent]).catch(() => undefined);
    return {
      ...summary,
      ...(failure ? { failure } : {}),
      ...(after
        ? {
            stillPresent: after.present.map(describeObject),
            keptRemoved: keptPresent.filter((o) => !after.present.includes(o)).map(describeObject),
          }
        : {}),
    };
  };

  // Steps 1 and 2 only while the release's objects exist: an earlier uninstall that stopped after deleting them
  // (a post-delete hook failed) resumes at step 3, as the engine's state would (the rollout is gone from it then).
  if (releasePresent.length > 0) {
    const { cleanup, failure } = await rolloutDelete(run);
    summary.cleanup = cleanup;
    if (failure) return verified({ step: "cleanup", message: failure });
    // What the engine deletes, dependents first: the component's extras, then the chart's objects; the kept ones
    // are helm.v4.Chart's retainOnDelete, the Namespace goes last.
    const toDelete = [...assembly.objects].reverse().filter((o) => !isNamespace(o) && !isKept(o));
    try {
      const report = await deleteObjects(kc, toDelete);
      summary.deleted = report.deleted;
      summary.alreadyAbsent = report.absent;
    } catch (e) {
      return verified({ step: "delete", message: (e as Error).message });
    }
  }
  try {
    await rolloutProvider.delete("", { ...outputsWithoutRun(inputs), chartSide: "before" });
  } catch (e) {
    return verified({ step: "post-delete", message: (e as Error).message });
  }
  if (assembly.namespace && namespacePresent) {
    summary.namespaceDeleted = await deleteAndWaitGone(
      kc,
      assembly.namespace,
      Date.now() + inputs.timeoutSeconds * 1000,
    );
  }
  return verified();
}
