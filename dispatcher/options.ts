// The dispatcher's options and dependencies, their checks before any cluster call, and the errors they map to.
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { FieldSelectorParseError, parseFieldSelector } from "../kube/fieldSelector";
import { parseLabelSelector, SelectorParseError, type LabelSelector } from "../kube/labelSelector";
import type { Progress } from "./fanout";
import { apiFailureOf, type DispatcherKubeApi, type RetryPolicy } from "./kubeApi";
import type { LogFormat, Logger } from "./log";
import type { NodeWorkTiming } from "./defaults";
import { PARALLELISM_MIN } from "../chart/parallelism";
import { instanceMarkKey, type TaintMatcher } from "../kube/nodeLabels";
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
} from "../kube/validation";

export interface DispatcherOptions {
  /** Path of the Job template (YAML, one batch/v1 Job). */
  jobTemplate: string;
  namePrefix: string;
  ownerJobName?: string;
  /** Most Jobs of this owner active at once (default PARALLELISM_DEFAULT), clamped to [PARALLELISM_MIN, nodes]. */
  parallelism?: number;
  /** Explicit node names; when non-empty, selectors are ignored. */
  nodes?: string[];
  /** One label selector per entry, unioned (OR); none means every node. */
  nodeSelectors?: string[];
  namespace?: string;
  nodeFieldSelector?: string;
  nodePageSize?: number;
  /** Re-check interval while waiting for nodes (and for stuck-pod checks), seconds. Default 5. */
  pollIntervalSecs?: number;
  ignoreNodeTaints?: boolean;
  waitForNodesSecs?: number;
  nodeSettleSecs?: number;
  /** Whole-run deadline, seconds; unset means none. */
  timeoutSecs?: number;
  /** How long a pod may stay unschedulable / unpullable before the node is reported stuck, seconds. Default 120. */
  stuckAfterSecs?: number;
  /** How long to wait for Jobs of earlier runs to be deleted, seconds. Default 120. */
  staleDeleteTimeoutSecs?: number;
  dryRun?: boolean;
  /**
   * Leave out nodes whose record says a Job with this template's payload (kube/payload.ts) succeeded there: they are
   * reported succeeded (`Unchanged`) without a Job. This project's flag; the record is written by this dispatcher.
   */
  skipInstalledNodes?: boolean;
  /** Progress line interval, seconds. Default 10. */
  progressIntervalSecs?: number;
  /**
   * Prefix of the per-node Jobs' owner/node labels and node-name annotation, and of the node records
   * (`<prefix>/result`, ...). Default kube/jobStatus.ts TRACKING_LABEL_PREFIX.
   */
  trackingLabelPrefix?: string;
  /**
   * The owner Job is the one that created this pod (a CronJob's run): the pod, in the dispatcher's namespace, is read
   * for its controlling Job. Exclusive with ownerJobName.
   */
  ownerJobFromPod?: string;
  /** Exit 0 without dispatching while another owner Job of this prefix still runs (needs an owner). */
  yieldToLiveRun?: boolean;
  /**
   * Leave out nodes where both labels this install writes are at the `nodeLabel` value and (with
   * requireNodeHandlers) a required handler is served: reported succeeded, reason `Satisfied`. Needs nodeLabel.
   */
  skipSatisfiedNodes?: boolean;
  /** The shared label key (default kube/nodeLabels.ts SHARED_NODE_LABEL_KEY). */
  nodeLabelKey?: string;
  /** After a node's Job succeeded, set the shared label and this install's mark to this value. */
  nodeLabel?: string;
  /** Cleanup: demote this install's labels before the Job, release them after it succeeded. */
  removeNodeLabel?: boolean;
  /** Before the Job, add the pending value to whichever of the two labels is absent; failing that fails the node. */
  claimNodePending?: boolean;
  /** The value of claimed and demoted labels (default kube/nodeLabels.ts PENDING_LABEL_VALUE, `false`). */
  nodeLabelPendingValue?: string;
  /** Prefix of the install marks (default kube/nodeLabels.ts INSTANCE_LABEL_PREFIX). */
  instanceLabelPrefix?: string;
  /** This install's mark is `<instance prefix>/<suffix>` (default `default`). */
  multiInstallSuffix?: string;
  /** CRI handler names; before labelling, any one of them must be served by the node. */
  requireNodeHandlers?: string[];
  /** After the Job succeeded, wait up to this long for the Node's Ready condition before labelling; 0: no wait. */
  waitNodeReadySecs?: number;
  /** Taints lifted (best effort) once the node is labelled: `key` (any effect) or `key:effect`. Needs nodeLabel. */
  removeNodeTaints?: TaintMatcher[];
  /** Fail (no Job) a node that does not report `status.nodeInfo.containerRuntimeVersion`. */
  requireNodeRuntimeVersion?: boolean;
  /** Fail (no Job) a node that does not report `status.nodeInfo.machineID`. */
  requireNodeMachineId?: boolean;
  /**
   * Template of the cleanup pass over nodes this install marks but no longer selects (dispatcher-reference.md §3.7):
   * they run it first (prefix `<name prefix>-removed`, labels released after success); a failure there stops the run
   * before the install pass.
   */
  cleanupJobTemplate?: string;
  /** Before each Job, warn when the node's kubelet `runtimeRequestTimeout` is below this (advisory; 0 = off). */
  kubeletTimeoutWarnSecs?: number;
  /**
   * Internal (the cleanup pass's run, not a flag): the install's label selectors. A node matching one again is left
   * alone and counted as succeeded (`BackInSelection`).
   */
  removedFromSelectors?: string[];
}

export interface DispatcherDeps {
  /** Kubeconfig to use; default: in-cluster when running in a pod, else the default kubeconfig loading rules. */
  kubeConfig?: KubeConfig;
  kubeconfigPath?: string;
  context?: string;
  api?: DispatcherKubeApi;
  /** Graceful stop (SIGTERM): dispatch nothing more, report, exit 1. */
  stopSignal?: AbortSignal;
  /** Abrupt end (tests of restart safety): abandon everything at once, as a killed process would. */
  killSignal?: AbortSignal;
  logger?: Logger;
  logFormat?: LogFormat;
  /** Environment for POD_NAMESPACE. Default process.env. */
  env?: Record<string, string | undefined>;
  serviceAccountNamespaceFile?: string;
  retry?: Partial<RetryPolicy>;
  /** The node work's pacing (tests shorten it); default defaults.ts NODE_WORK_TIMING. */
  nodeWorkTiming?: Partial<NodeWorkTiming>;
  /** Called with every progress change (tests, bench). */
  onProgress?: (p: Progress) => void;
}

/** A fatal condition with the exit code it maps to and a message that says what to fix. */
export class DispatcherError extends Error {
  override readonly name = "DispatcherError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** First non-blank of: the flag, $POD_NAMESPACE, the ServiceAccount namespace file, "default". */
export function resolveNamespace(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  saFile = SA_NAMESPACE_FILE,
): string {
  if (flag?.trim()) return flag.trim();
  if (env.POD_NAMESPACE?.trim()) return env.POD_NAMESPACE.trim();
  try {
    const fromFile = readFileSync(saFile, "utf8").trim();
    if (fromFile) return fromFile;
  } catch {
    // Not in a pod: fall through.
  }
  return "default";
}

/** In-cluster config when a ServiceAccount token is mounted (and no kubeconfig was asked for), else kubeconfig. */
export function loadKubeConfig(path?: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    const source = path
      ? `--kubeconfig ${path}`
      : process.env.KUBECONFIG
        ? `KUBECONFIG=${process.env.KUBECONFIG}`
        : "the default kubeconfig";
    throw new DispatcherError(
      `${source}: cannot load it (${describeError(err)}); pass a valid kubeconfig or run in-cluster`,
      2,
    );
  }
  if (context) {
    if (!kc.getContextObject(context)) {
      throw new DispatcherError(
        `--context ${context}: no such context in the kubeconfig (available: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(", ") || "none"
        })`,
        2,
      );
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) {
    throw new DispatcherError(
      "no Kubernetes cluster configured: run in a pod with a ServiceAccount, or pass --kubeconfig / set KUBECONFIG",
      2,
    );
  }
  return kc;
}

/** Validate every option that can be checked without the cluster; returns the parsed label selectors. */
export function checkOptions(o: DispatcherOptions): LabelSelector[] {
  const problems: string[] = [];
  if (!o.jobTemplate) problems.push("--job-template is required (path of the per-node Job YAML)");
  if (!o.namePrefix || !o.namePrefix.trim())
    problems.push("--name-prefix is required and must not be blank (e.g. kata-deploy-install)");
  const positive = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isFinite(v) || v < min))
      problems.push(`${name} must be a number >= ${min} (got ${v})`);
  };
  positive("--parallelism", o.parallelism, PARALLELISM_MIN);
  positive("--node-page-size", o.nodePageSize, 1);
  positive("--poll-interval-secs", o.pollIntervalSecs, 0);
  positive("--wait-for-nodes-secs", o.waitForNodesSecs, 0);
  positive("--node-settle-secs", o.nodeSettleSecs, 0);
  positive("--timeout-secs", o.timeoutSecs, 0);
  positive("--stuck-after-secs", o.stuckAfterSecs, 0);
  positive("--wait-node-ready-secs", o.waitNodeReadySecs, 0);
  positive("--kubelet-timeout-warn-secs", o.kubeletTimeoutWarnSecs, 0);
  const selectors: LabelSelector[] = [];
  for (const s of o.nodeSelectors ?? []) {
    try {
      selectors.push(parseLabelSelector(s));
    } catch (err) {
      if (!(err instanceof SelectorParseError)) throw err;
      problems.push(`--node-selector ${JSON.stringify(s)} is not a valid label selector: ${err.message}`);
    }
  }
  if (o.nodeFieldSelector) {
    try {
      parseFieldSelector(o.nodeFieldSelector);
    } catch (err) {
      if (!(err instanceof FieldSelectorParseError)) throw err;
      problems.push(
        `--node-field-selector ${JSON.stringify(o.nodeFieldSelector)} is not a valid field selector: ${err.message}`,
      );
    }
  }
  problems.push(...nodeWorkProblems(o));
  if (problems.length > 0) throw new DispatcherError(problems.join("\n"), 2);
  return selectors;
}

/** The checks of the ownership, tracking and node-work flags (k8s-job-dispatcher's startup validation). */
function nodeWorkProblems(o: DispatcherOptions): string[] {
  const problems: string[] = [];
  const invalid = (flag: string, value: string, errors: string[]) => {
    if (errors.length > 0)
      problems.push(`${flag} ${JSON.stringify(value)} is not valid: ${errors.join("; ")}`);
  };
  if (o.trackingLabelPrefix !== undefined) {
    invalid(
      "--tracking-label-prefix",
      o.trackingLabelPrefix,
      dns1123SubdomainErrors(o.trackingLabelPrefix).map((e) => `a label key prefix ${e}`),
    );
  }
  if (o.ownerJobName && o.ownerJobFromPod) {
    problems.push(
      "--owner-job-name and --owner-job-from-pod are mutually exclusive: name the owner Job, or the pod a Job created",
    );
  }
  if (o.yieldToLiveRun && !o.ownerJobName && !o.ownerJobFromPod) {
    problems.push(
      "--yield-to-live-run needs an owner (--owner-job-name or --owner-job-from-pod): runs are told apart by their owner Job",
    );
  }
  if (o.skipSatisfiedNodes && o.nodeLabel === undefined) {
    problems.push(
      "--skip-satisfied-nodes needs --node-label: a node is satisfied when its labels are at that value",
    );
  }
  if (o.nodeLabelKey !== undefined)
    invalid("--node-label-key", o.nodeLabelKey, labelKeyErrors(o.nodeLabelKey));
  if (o.nodeLabel !== undefined) {
    invalid(
      "--node-label",
      o.nodeLabel,
      o.nodeLabel === "" ? ["must not be empty"] : labelValueErrors(o.nodeLabel),
    );
  }
  if (o.nodeLabelPendingValue !== undefined) {
    invalid(
      "--node-label-pending-value",
      o.nodeLabelPendingValue,
      o.nodeLabelPendingValue === "" ? ["must not be empty"] : labelValueErrors(o.nodeLabelPendingValue),
    );
    if (o.nodeLabel !== undefined && o.nodeLabel === o.nodeLabelPendingValue) {
      problems.push(
        `--node-label and --node-label-pending-value are both ${JSON.stringify(o.nodeLabel)}: a pending node would look installed`,
      );
    }
  }
  if (o.instanceLabelPrefix !== undefined) {
    invalid(
      "--instance-label-prefix",
      o.instanceLabelPrefix,
      dns1123SubdomainErrors(o.instanceLabelPrefix).map((e) => `a label key prefix ${e}`),
    );
  }
  if (o.multiInstallSuffix !== undefined) {
    const key = instanceMarkKey(o.instanceLabelPrefix, o.multiInstallSuffix);
    const errors = labelKeyErrors(key).filter((e) => !e.startsWith("prefix part"));
    invalid(
      "--multi-install-suffix",
      o.multiInstallSuffix,
      errors.map((e) => `in the mark ${key}: ${e}`),
    );
  }
  if (o.removeNodeTaints?.length && o.nodeLabel === undefined) {
    problems.push(
      "--remove-node-taints needs --node-label: taints are lifted only once the node is labelled as serving",
    );
  }
  for (const m of o.removeNodeTaints ?? []) {
    invalid("--remove-node-taints", m.effect ? `${m.key}:${m.effect}` : m.key, labelKeyErrors(m.key));
  }
  for (const handler of o.requireNodeHandlers ?? []) {
    // RuntimeClass.handler is a DNS-1123 label (e.g. kata-qemu).
    invalid("--require-node-handlers", handler, dns1123LabelErrors(handler));
  }
  return problems;
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Turn an RBAC refusal into a message naming the missing permission. */
export function forbiddenHint(
  err: unknown,
  verb: string,
  resource: string,
  namespace?: string,
): string | undefined {
  const failure = apiFailureOf(err);
  if (failure.code !== 403 && failure.code !== 401) return undefined;
  const where = namespace ? ` in namespace ${namespace}` : " (cluster-wide)";
  return failure.code === 401
    ? `the API server rejected the credentials (401 Unauthorized) while trying to ${verb} ${resource}: check the ServiceAccount token or kubeconfig`
    : `missing permission: ${verb} ${resource}${where} (${failure.message}). Grant it to the dispatcher's ServiceAccount (chart 4.0.0: ClusterRole nodes [list]; Role jobs.batch [create, get, list, watch, delete])`;
}
