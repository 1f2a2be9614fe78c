// Shapes of the rollout resource's inputs and outputs. Types only (erased at run time), shared by the provider,
// the wrapper and the input builder.
import type { NodeResult } from "../kube/jobStatus";
import type { KataCorrection } from "./aggregate";
import type { NodeSelection } from "../kube/nodeSelection";
import type { Toleration } from "../kube/tolerations";
import type { ConnectionSpec } from "./connection";

export type { NodeResult };

export type RolloutMode = "job" | "daemonset";

/** A Kubernetes object as plain JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    deletionTimestamp?: string;
    creationTimestamp?: string;
    [key: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Which nodes a dispatcher run covers (kube/nodeSelection.ts): names win, else a union of selectors. */
export type NodeSelectionSpec = NodeSelection;

/** One hook stage in job mode: the dispatcher Job to create and what its per-node Jobs look like. */
export interface DispatcherStage {
  /** The dispatcher Job exactly as chart 4.0.0 renders it (from the chart renderer). */
  job: KubeObject;
  /** Owner label value of its per-node Jobs (`ownerValue(--name-prefix)`). */
  ownerValue: string;
  selection: NodeSelectionSpec;
  /** Tolerations of the per-node Job template, to explain nodes a dispatcher skips for their taints. */
  tolerations?: Toleration[];
  /**
   * The dispatcher's `--parallelism` (chart `job.parallelism`): when that many per-node Jobs are all stuck, the
   * dispatcher cannot start another and the run cannot progress. Absent in states written before it existed.
   */
  parallelism?: number;
  /**
   * Install stage with the bundled dispatcher: what the per-node Jobs install (kube/payload.ts's digest of the per-node
   * template), which the dispatcher records on each node and can leave out nodes that carry (`--skip-installed-nodes`).
   */
  payload?: string;
}

/** The DaemonSet the rollout waits for in daemonset mode. */
export interface DaemonSetTarget {
  name: string;
  /** The pods' labels the DaemonSet selects (`spec.selector.matchLabels`). */
  podSelector: Record<string, string>;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
}

/** A release object by reference (what `helm uninstall` deletes, or keeps when `keep` is set). */
export interface ReleaseObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  /** `helm.sh/resource-policy: keep`. */
  keep?: boolean;
}

/**
 * Which side of the chart a rollout resource stands on. `after` (default; depends on the chart): create/update run the
 * post-install/post-upgrade hooks, delete the pre-delete hooks. `before` (the chart depends on it): create/update run
 * the pre-install/pre-upgrade hooks, delete runs after the chart's objects are gone: it waits for them as `helm
 * uninstall` does, runs the post-delete hooks, then removes the release's `keep` objects.
 */
export type ChartSide = "before" | "after";

/**
 * What the next install run does on the nodes, read from the nodes' records at program time (preview and up alike;
 * rollout/installPlan.ts), so that `pulumi preview --diff` shows it. Job mode with the bundled dispatcher only: its
 * records say what each node carries.
 */
export interface InstallPlan {
  /** Nodes the install's selection covers now. */
  selected?: number;
  /** Nodes the next run installs: the sum of the three reasons. */
  install?: number;
  /** No install on record (a node that joined, or one cleaned since): names, sorted, the first 50 then a count. */
  new?: string;
  /** Installed with another payload (chart version, images, the per-node template changed). */
  changed?: string;
  /** The last install there failed. */
  failed?: string;
  /** Would need an install but carry a taint the per-node Jobs do not tolerate: left out. */
  blocked?: string;
  /** Why the nodes could not be read: the plan is unknown, and the run decides when it starts. */
  unreadable?: string;
}

export interface RolloutInputs {
  /** Secret. Resolved at program time (rollout/resolveConnection.ts). */
  connection: ConnectionSpec;
  namespace: string;
  /** The Helm release name; a change replaces the rollout (absent in states written before it was an input). */
  releaseName?: string;
  mode: RolloutMode;
  /** Hash of everything whose change must re-run the install (rollout/runKey.ts). */
  runKey: string;
  /** A change of it re-installs every node, even those that already carry the payload (part of `runKey` too). */
  rerunToken?: string;
  install?: DispatcherStage;
  cleanup?: DispatcherStage;
  daemonSet?: DaemonSetTarget;
  /** The chart's DaemonSet name (`base`): in job mode the rollout waits until no DaemonSet of that name is left. */
  daemonSetName: string;
  /** The chart's install dispatcher Job name: in daemonset mode the rollout waits until job-mode Jobs are gone. */
  installDispatcherJobName: string;
  timeoutSeconds: number;
  /** diff proposes an update when selected nodes have no successful install (new nodes, earlier failures). */
  healDrift: boolean;
  /** Run the cleanup dispatcher on destroy (job mode). */
  cleanupOnDestroy: boolean;
  /** A pod stuck (image pull, unschedulable, crash loop) this long fails its node before the timeout. */
  stuckGraceSeconds?: number;
  /** Label used in progress lines and messages. */
  displayName?: string;
  /** The chart's hook objects of every phase, as rendered (Helm's rules: kube/helmHooks.ts). */
  hooks?: KubeObject[];
  /** The release's non-hook objects (what helm.v4.Chart applies). */
  releaseObjects?: ReleaseObjectRef[];
  /** Default `after`. */
  chartSide?: ChartSide;
  /**
   * The chart refuses a change of the release's mode or multi-install suffix (4.1.0 and later): `check` fails such an
   * update, naming both values, instead of the replacement an older chart allows.
   */
  identityImmutable?: boolean;
  /** The install plan read at program time (absent: not job mode with the bundled dispatcher, or healDrift off). */
  plan?: InstallPlan;
  /**
   * With a Kubernetes provider of the caller's: the uid of the kube-system namespace as that provider read it. The
   * rollout's connection must reach the namespace of this uid (the same cluster) before it changes anything.
   */
  clusterUid?: string;
}

export interface RolloutSummary {
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** Nodes whose outcome nobody could know (their Job vanished unrecorded); present only when there are some. */
  unknown?: number;
  durationSeconds: number;
}

export interface RolloutOutputs extends RolloutInputs {
  /** nodeResults in the compact encoding of rollout/compact.ts (the wrapper exposes the documented shape). */
  results: string;
  summary: RolloutSummary;
  runId: string;
  /** The runKey of the last run that was started (a re-run happens exactly when the input runKey differs). */
  lastRunKey: string;
  /**
   * Where Kata is installed now differs from the last run's successes (nodes deleted or cleaned since, or installed
   * and since outside the selection): rollout/aggregate.ts kataCorrection, re-read after each run and on refresh.
   */
  kataCorrection?: KataCorrection;
}
