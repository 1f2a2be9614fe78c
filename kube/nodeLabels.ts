// The node labels kata-deploy's dispatchers write to say a node serves Kata (dispatcher-reference.md §3, §3.3): the
// shared label every install of the cluster shares, and one mark per install (multi-install). The keys are flags of
// k8s-job-dispatcher; these are the values kata-deploy's charts pass, and the in-tree dispatcher's constants.
// Pure functions over a node's labels; node built-ins only.

/** `--node-label-key` default: the shared label RuntimeClasses select. */
export const SHARED_NODE_LABEL_KEY = "katacontainers.io/kata-runtime";
/** `--instance-label-prefix` default: `<prefix>/<suffix>` is one install's mark. */
export const INSTANCE_LABEL_PREFIX = "kata-deploy.katacontainers.io";
/** The mark's name when no `--multi-install-suffix` is given. */
export const DEFAULT_INSTANCE_SUFFIX = "default";
/** `--node-label-pending-value` default: what a claimed (Job not yet succeeded) or demoted node carries in both labels. */
export const PENDING_LABEL_VALUE = "false";

/** The install's mark: `<prefix>/<suffix or "default">`. */
export function instanceMarkKey(
  prefix: string = INSTANCE_LABEL_PREFIX,
  suffix: string | undefined = undefined,
): string {
  return `${prefix}/${suffix || DEFAULT_INSTANCE_SUFFIX}`;
}

/** The two labels of one install: the shared one and its own mark. */
export interface InstallLabelKeys {
  shared: string;
  mark: string;
  /** Marks of every install start with `<instance prefix>/`. */
  markPrefix: string;
  /** The value of a claimed or demoted label (also what another install's mark says while it is only pending). */
  pending: string;
}

export function installLabelKeys(
  o: {
    nodeLabelKey?: string;
    instanceLabelPrefix?: string;
    multiInstallSuffix?: string;
    nodeLabelPendingValue?: string;
  } = {},
): InstallLabelKeys {
  const prefix = o.instanceLabelPrefix ?? INSTANCE_LABEL_PREFIX;
  return {
    shared: o.nodeLabelKey ?? SHARED_NODE_LABEL_KEY,
    mark: instanceMarkKey(prefix, o.multiInstallSuffix),
    markPrefix: `${prefix}/`,
    pending: o.nodeLabelPendingValue ?? PENDING_LABEL_VALUE,
  };
}

type Labels = Readonly<Record<string, string>> | undefined;

/** Label changes: a value sets the key, null removes it. */
export type LabelChanges = Record<string, string | null>;

/**
 * What the shared label becomes when this install lets go of a node (§3.3): `keep` while another install's mark is
 * live (not pending), `demote` while other installs are only pending, `remove` when no other install marks the node.
 */
export function sharedLabelVerdict(labels: Labels, keys: InstallLabelKeys): "keep" | "demote" | "remove" {
  let other = false;
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (key === keys.mark || !key.startsWith(keys.markPrefix)) continue;
    if (value !== keys.pending) return "keep";
    other = true;
  }
  return other ? "demote" : "remove";
}

/** `--claim-node-pending`: add the pending value to each of the two labels that is absent (a present one is kept). */
export function claimChanges(labels: Labels, keys: InstallLabelKeys): LabelChanges {
  const changes: LabelChanges = {};
  for (const key of [keys.shared, keys.mark]) if (labels?.[key] === undefined) changes[key] = keys.pending;
  return changes;
}

/** After the install's Job (and its checks) succeeded: both labels at the `--node-label` value. */
export function labelChanges(labels: Labels, keys: InstallLabelKeys, value: string): LabelChanges {
  const changes: LabelChanges = {};
  for (const key of [keys.shared, keys.mark]) if (labels?.[key] !== value) changes[key] = value;
  return changes;
}

/**
 * `--remove-node-label`, before the cleanup Job: both labels to the pending value, so a failed cleanup stays
 * discoverable; the shared label is left alone while another install serves the node. A node without them is left alone.
 */
export function demoteChanges(labels: Labels, keys: InstallLabelKeys): LabelChanges {
  const changes: LabelChanges = {};
  if (labels?.[keys.mark] !== undefined && labels[keys.mark] !== keys.pending)
    changes[keys.mark] = keys.pending;
  const shared = labels?.[keys.shared];
  if (shared !== undefined && shared !== keys.pending && sharedLabelVerdict(labels, keys) !== "keep")
    changes[keys.shared] = keys.pending;
  return changes;
}

/** `--remove-node-label`, after the cleanup Job succeeded: the mark goes; the shared label by the verdict. */
export function releaseChanges(labels: Labels, keys: InstallLabelKeys): LabelChanges {
  const changes: LabelChanges = {};
  if (labels?.[keys.mark] !== undefined) changes[keys.mark] = null;
  const shared = labels?.[keys.shared];
  const verdict = sharedLabelVerdict(labels, keys);
  if (verdict === "demote" && shared !== undefined && shared !== keys.pending)
    changes[keys.shared] = keys.pending;
  if (verdict === "remove" && shared !== undefined) changes[keys.shared] = null;
  return changes;
}

/** Every label this install writes is at its finished value (`--skip-satisfied-nodes`; a pending node never is). */
export function labelsAtValue(labels: Labels, keys: InstallLabelKeys, value: string): boolean {
  return labels?.[keys.shared] === value && labels?.[keys.mark] === value;
}

/**
 * `--require-node-handlers` against `.status.runtimeHandlers[].name` (§3.4 step 6): `unanswerable` when the node does
 * not report the field (Kubernetes before 1.30), `serving` when any one expected handler is served (others missing is
 * normal on mixed-architecture fleets), else `notServing` (an empty list included).
 */
export function handlersVerdict(
  served: readonly string[] | undefined,
  expected: readonly string[],
): "unanswerable" | "serving" | "notServing" {
  if (served === undefined) return "unanswerable";
  return expected.some((h) => served.includes(h)) ? "serving" : "notServing";
}

/** The handler names a Node reports, or undefined when it does not report the field. */
export function servedHandlers(node: {
  status?: { runtimeHandlers?: readonly { name?: string }[] };
}): string[] | undefined {
  const list = node.status?.runtimeHandlers;
  if (!Array.isArray(list)) return undefined;
  return list.map((h) => h.name ?? "").filter(Boolean);
}

/** One RFC 6902 operation of a node write. */
export type JsonPatchOp =
  | { op: "test"; path: string; value: string }
  | { op: "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** A JSON Pointer segment: `~` → `~0` first, then `/` → `~1`. */
export function pointerSegment(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/**
 * A label write that only applies to the node as it was read (§3): it tests the UID (a replaced node) and the
 * resourceVersion (a concurrent change), so a stale read is refused (422) and read again. A node without a labels
 * map gets the whole map.
 */
export function guardedLabelPatch(
  node: { metadata?: { uid?: string; resourceVersion?: string; labels?: Record<string, string> } },
  changes: LabelChanges,
): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [
    { op: "test", path: "/metadata/uid", value: node.metadata?.uid ?? "" },
    { op: "test", path: "/metadata/resourceVersion", value: node.metadata?.resourceVersion ?? "" },
  ];
  if (!node.metadata?.labels) {
    const added = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== null));
    return [...ops, { op: "add", path: "/metadata/labels", value: added }];
  }
  for (const [key, value] of Object.entries(changes)) {
    const path = `/metadata/labels/${pointerSegment(key)}`;
    ops.push(value === null ? { op: "remove", path } : { op: "add", path, value });
  }
  return ops;
}

/** `--remove-node-taints` entry: `key` matches any effect, `key:effect` exactly (split at the first `:`, trimmed). */
export interface TaintMatcher {
  key: string;
  effect?: string;
}

export function parseTaintMatchers(value: string): TaintMatcher[] {
  return value
    .split(",")
    .map((entry) => {
      const at = entry.indexOf(":");
      const key = (at < 0 ? entry : entry.slice(0, at)).trim();
      const effect = at < 0 ? undefined : entry.slice(at + 1).trim() || undefined;
      return { key, ...(effect ? { effect } : {}) };
    })
    .filter((m) => m.key.length > 0);
}

/** The node's taints that no matcher lifts (the start-up taints the install waits to remove are the others). */
export function taintsToKeep<T extends { key: string; effect?: string }>(
  taints: readonly T[],
  matchers: readonly TaintMatcher[],
): T[] {
  return taints.filter((t) => !matchers.some((m) => m.key === t.key && (!m.effect || m.effect === t.effect)));
}

/** A guarded write of the node's taints (uid and resourceVersion tested like the label writes). */
export function guardedTaintPatch(
  node: { metadata?: { uid?: string; resourceVersion?: string } },
  keep: readonly unknown[],
): JsonPatchOp[] {
  return [
    { op: "test", path: "/metadata/uid", value: node.metadata?.uid ?? "" },
    { op: "test", path: "/metadata/resourceVersion", value: node.metadata?.resourceVersion ?? "" },
    { op: "replace", path: "/spec/taints", value: keep },
  ];
}

/** The Node's `Ready` condition is `True` (looked up by type, not position). */
export function nodeIsReady(node: {
  status?: { conditions?: readonly { type: string; status: string }[] };
}): boolean {
  return node.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
}

/** The node facts handed to every container of its Job (empty strings count as unknown). */
export interface NodeFacts {
  containerRuntimeVersion?: string;
  machineID?: string;
}

export function nodeFacts(node: {
  status?: { nodeInfo?: { containerRuntimeVersion?: string; machineID?: string } };
}): NodeFacts {
  const info = node.status?.nodeInfo;
  return {
    ...(info?.containerRuntimeVersion ? { containerRuntimeVersion: info.containerRuntimeVersion } : {}),
    ...(info?.machineID ? { machineID: info.machineID } : {}),
  };
}

/**
 * `--require-node-runtime-version` / `--require-node-machine-id`: what the node does not report, as a message, or
 * undefined when every required fact is there.
 */
export function missingNodeFacts(
  facts: NodeFacts,
  require: { runtimeVersion?: boolean; machineId?: boolean },
): string | undefined {
  const missing = [
    ...(require.runtimeVersion && !facts.containerRuntimeVersion
      ? ["status.nodeInfo.containerRuntimeVersion (--require-node-runtime-version)"]
      : []),
    ...(require.machineId && !facts.machineID
      ? ["status.nodeInfo.machineID (--require-node-machine-id)"]
      : []),
  ];
  return missing.length > 0 ? `the node does not report ${missing.join(" nor ")}` : undefined;
}

/**
 * Env names the node facts go by: `CONTAINER_RUNTIME_VERSION`; the machine ID as k8s-job-dispatcher names it
 * (`NODE_MACHINE_ID`, read by kata-deploy from 4.2) and as the in-tree dispatcher did (`KATA_DEPLOY_NODE_MACHINE_ID`,
 * read up to 4.1), so the node-identity check works with either image.
 */
export const NODE_FACT_ENV = {
  runtimeVersion: "CONTAINER_RUNTIME_VERSION",
  machineId: ["NODE_MACHINE_ID", "KATA_DEPLOY_NODE_MACHINE_ID"],
} as const;
