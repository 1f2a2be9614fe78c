// The KataDeploy arguments: Pulumi-schema-inferable (interfaces and string enums only, no literal unions,
// pulumi-facts.md §1.3). Names mirror chart 4.0.0's value keys (kata-deploy-chart.md §1, the "OLD" column),
// so the chart's documentation reads straight onto the component. Every chart key is Input-capable.
// Extending: add the field here, its zod rule in `validation.ts` (CHART_FIELDS or COMPONENT_FIELDS), and,
// for a component-only field, its use in `plan.ts`.
import type * as pulumi from "@pulumi/pulumi";

/** `deploymentMode`: how Kata is installed on the nodes. */
export enum DeploymentMode {
  /** A long-running DaemonSet installs Kata on every matching node (the chart's default). */
  Daemonset = "daemonset",
  /** One node-pinned install Job per node, started by a dispatcher, at most `job.parallelism` at a time. */
  Job = "job",
}

/** `k8sDistribution`: picks the containerd configuration path on the nodes. */
export enum K8sDistribution {
  K8s = "k8s",
  K3s = "k3s",
  Rke2 = "rke2",
  K0s = "k0s",
  Microk8s = "microk8s",
}

/** `imagePullPolicy`, applied to the DaemonSet, the per-node Jobs and the dispatcher. */
export enum ImagePullPolicy {
  Always = "Always",
  IfNotPresent = "IfNotPresent",
  Never = "Never",
}

/** CPU architectures a shim can support (`shims.<name>.supportedArches`, `defaultShim.<arch>`). */
export enum CpuArch {
  Amd64 = "amd64",
  Arm64 = "arm64",
  S390x = "s390x",
  Ppc64le = "ppc64le",
}

/** Snapshotters the install can set up (`snapshotter.setup`). */
export enum SnapshotterName {
  Nydus = "nydus",
  Erofs = "erofs",
}

/** Operators of a node selector requirement; the chart compiles exactly these four. */
export enum NodeSelectorOperator {
  In = "In",
  NotIn = "NotIn",
  Exists = "Exists",
  DoesNotExist = "DoesNotExist",
}

/** Toleration operators (Kubernetes core/v1). */
export enum TolerationOperator {
  Exists = "Exists",
  Equal = "Equal",
}

/** Taint effects (Kubernetes core/v1). */
export enum TaintEffect {
  NoSchedule = "NoSchedule",
  PreferNoSchedule = "PreferNoSchedule",
  NoExecute = "NoExecute",
}

/** An image as the chart takes it: `reference:tag`, or `reference` verbatim when it holds a digest (`@`). */
export interface ImageRef {
  /** Repository without a tag, e.g. `quay.io/kata-containers/kata-deploy`, or a full `repo@sha256:…` digest reference. */
  reference?: pulumi.Input<string>;
  /** Tag; empty means the chart's appVersion. */
  tag?: pulumi.Input<string>;
}

/** An image pull secret (`imagePullSecrets[]`): the name of a Secret in the release namespace. */
export interface ImagePullSecret {
  name: pulumi.Input<string>;
}

/** A Kubernetes toleration (`tolerations[]`). */
export interface Toleration {
  /** Taint key; empty (with `Exists`) tolerates every taint. */
  key?: pulumi.Input<string>;
  operator?: pulumi.Input<TolerationOperator>;
  /** Only with `Equal`. */
  value?: pulumi.Input<string>;
  /** Empty tolerates every effect. */
  effect?: pulumi.Input<TaintEffect>;
  /** Only with `NoExecute`: how long the pod stays bound after the taint appears. */
  tolerationSeconds?: pulumi.Input<number>;
}

/** One `{key, operator, values}` entry of `job.nodeSelectorExpressions` / `job.cleanup.nodeSelectorExpressions`. */
export interface NodeSelectorRequirement {
  /** A node label key, e.g. `node-role.kubernetes.io/control-plane`. */
  key: pulumi.Input<string>;
  operator: pulumi.Input<NodeSelectorOperator>;
  /** Required and non-empty for In/NotIn; must be absent for Exists/DoesNotExist. */
  values?: pulumi.Input<pulumi.Input<string>[]>;
}

/** `job.cleanup.*`: which nodes the uninstall (pre-delete) cleanup dispatcher works on. */
export interface JobCleanupSettings {
  /** Explicit node names; when set, no selector is used. */
  nodes?: pulumi.Input<pulumi.Input<string>[]>;
  /** Equality part of the cleanup selector (`key: value`, values as strings). */
  nodeSelector?: pulumi.Input<{ [key: string]: pulumi.Input<string> }>;
  /** Expression part of the cleanup selector. Chart default: `katacontainers.io/kata-runtime` Exists. */
  nodeSelectorExpressions?: pulumi.Input<pulumi.Input<NodeSelectorRequirement>[]>;
}

/** `job.*`: settings of job mode (ignored in daemonset mode). */
export interface JobSettings {
  /** Image of the dispatcher. Chart default `quay.io/kata-containers/kata-deploy-job-dispatcher`, tag = appVersion. */
  dispatcherImage?: pulumi.Input<ImageRef>;
  /** The most per-node install Jobs in flight at once (integer ≥ 1). Chart default 100. */
  parallelism?: pulumi.Input<number>;
  /** Explicit node names (DNS-1123 subdomains). When set, the install uses exactly these nodes and no selector. */
  nodes?: pulumi.Input<pulumi.Input<string>[]>;
  /** Equality part of the install node selector (`key: value`, values as strings). */
  nodeSelector?: pulumi.Input<{ [key: string]: pulumi.Input<string> }>;
  /** Expression part of the install node selector. Chart default: control-plane and master DoesNotExist. */
  nodeSelectorExpressions?: pulumi.Input<pulumi.Input<NodeSelectorRequirement>[]>;
  /** Node selection of the uninstall cleanup. */
  cleanup?: pulumi.Input<JobCleanupSettings>;
  /** `backoffLimit` of each per-node Job (integer ≥ 0). Chart default 3. */
  backoffLimit?: pulumi.Input<number>;
  /** `ttlSecondsAfterFinished` of the per-node and dispatcher Jobs (integer ≥ 0). Chart default 600. */
  ttlSecondsAfterFinished?: pulumi.Input<number>;
}

/** `shims.<name>.containerd`. */
export interface ShimContainerdSettings {
  /** Snapshotter handler for this shim (`SNAPSHOTTER_HANDLER_MAPPING`), e.g. `nydus`, `devmapper`. */
  snapshotter?: pulumi.Input<string>;
  /** Force guest pull for this shim (`EXPERIMENTAL_FORCE_GUEST_PULL`). */
  forceGuestPull?: pulumi.Input<boolean>;
}

/** `shims.<name>.crio`. */
export interface ShimCrioSettings {
  /** Guest pull under CRI-O (`PULL_TYPE_MAPPING`). */
  guestPull?: pulumi.Input<boolean>;
}

/** `shims.<name>.agent`. */
export interface ShimAgentSettings {
  httpsProxy?: pulumi.Input<string>;
  noProxy?: pulumi.Input<string>;
}

/** `shims.<name>.runtimeClass.overhead`. */
export interface RuntimeClassOverhead {
  /** Quantity, e.g. `160Mi`. */
  memory?: pulumi.Input<string>;
  /** Quantity, e.g. `250m`. */
  cpu?: pulumi.Input<string>;
}

/** `shims.<name>.runtimeClass`. */
export interface ShimRuntimeClassSettings {
  /** Extra `scheduling.nodeSelector` entries of the shim's RuntimeClass. */
  nodeSelector?: pulumi.Input<{ [key: string]: pulumi.Input<string> }>;
  /** Per-shim override of the chart's `runtimeClasses.overheadEnabled`. */
  overheadEnabled?: pulumi.Input<boolean>;
  overhead?: pulumi.Input<RuntimeClassOverhead>;
}

/** `shims.<name>`: one Kata shim (runtime). */
export interface ShimSettings {
  /** true = on, false = off, unset = on unless all shims are disabled (`disableAllShims`). */
  enabled?: pulumi.Input<boolean>;
  supportedArches?: pulumi.Input<pulumi.Input<CpuArch>[]>;
  allowedHypervisorAnnotations?: pulumi.Input<pulumi.Input<string>[]>;
  containerd?: pulumi.Input<ShimContainerdSettings>;
  crio?: pulumi.Input<ShimCrioSettings>;
  agent?: pulumi.Input<ShimAgentSettings>;
  /** TOML drop-in for this shim's configuration. */
  dropIn?: pulumi.Input<string>;
  runtimeClass?: pulumi.Input<ShimRuntimeClassSettings>;
}

/** `defaultShim.<arch>`: the shim used by default on each architecture (chart 4.0.0: `qemu-runtime-rs`, `qemu` on ppc64le). */
export interface DefaultShims {
  amd64?: pulumi.Input<string>;
  arm64?: pulumi.Input<string>;
  s390x?: pulumi.Input<string>;
  ppc64le?: pulumi.Input<string>;
}

/** `snapshotter.*`. */
export interface SnapshotterSettings {
  /** Snapshotters to set up on the nodes. Chart default `[nydus]`. */
  setup?: pulumi.Input<pulumi.Input<SnapshotterName>[]>;
  /** `merged` or `unmerged` (env EROFS_MERGE_MODE); chart default "" (not set). */
  erofsMergeMode?: pulumi.Input<string>;
  /** `disk` or `memory` (env EROFS_SNAPSHOTTER_MODE); chart default "" (not set). */
  erofsSnapshotterMode?: pulumi.Input<string>;
  /** dm-verity for erofs layers (env EROFS_DMVERITY). Chart default false. */
  erofsDmverity?: pulumi.Input<boolean>;
}

/** `env.*`: installation environment. */
export interface EnvSettings {
  /** Suffix for a second, independent install: appended to object names, RuntimeClass names and handlers. */
  multiInstallSuffix?: pulumi.Input<string>;
  /** Prefix of the install directory on the host (`INSTALLATION_PREFIX`). */
  installationPrefix?: pulumi.Input<string>;
  /** Host OS hint (`HOST_OS`). */
  hostOS?: pulumi.Input<string>;
}

/** Where the chart comes from. Default: `oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy` 4.0.0. */
export interface ChartSource {
  /** An `oci://` registry path holding the `kata-deploy` chart, or an `https://` chart repository URL. */
  repository?: pulumi.Input<string>;
  /** Chart version (not with `path`). Default `4.0.0`. */
  version?: pulumi.Input<string>;
  /** A local chart directory (with its Chart.yaml); replaces `repository` and `version`. */
  path?: pulumi.Input<string>;
}

/**
 * Arguments of KataDeploy. Chart keys (`deploymentMode`, `image`, `job`, ...) become the chart's values;
 * `values` is deep-merged under them (a typed field wins over the same key in `values`).
 */
export interface KataDeployArgs {
  /** Namespace of the release. Default `kube-system`. */
  namespace?: pulumi.Input<string>;
  /**
   * Create `namespace` as part of this component. Default false. A plain value (not an output): it decides
   * whether a Namespace resource exists, which Pulumi must know when the program runs.
   */
  createNamespace?: boolean;
  /** Helm release name. Default: the component's resource name. */
  releaseName?: pulumi.Input<string>;
  /** Chart source (repository, version, or a local path). */
  chart?: pulumi.Input<ChartSource>;
  /**
   * Raw chart values, deep-merged with the typed fields: maps merge key by key, lists and scalars are replaced,
   * and a typed field wins over the same key here. Keys the component knows are validated wherever they come from.
   */
  // The chart's values tree is open-ended (any key of any chart version); `any` maps to the schema's
  // `pulumi.json#/Any` where `unknown` is rejected by the schema analyzer (pulumi-facts.md §1.3).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  values?: pulumi.Input<{ [key: string]: any }>;

  /** `deploymentMode`. Default `daemonset`. */
  deploymentMode?: pulumi.Input<DeploymentMode>;
  /** `image`: the kata-deploy image. Default `quay.io/kata-containers/kata-deploy`, tag = appVersion. */
  image?: pulumi.Input<ImageRef>;
  /** `imagePullPolicy`. Default `Always`. */
  imagePullPolicy?: pulumi.Input<ImagePullPolicy>;
  /** `imagePullSecrets`. */
  imagePullSecrets?: pulumi.Input<pulumi.Input<ImagePullSecret>[]>;
  /** `k8sDistribution`. Default `k8s`. */
  k8sDistribution?: pulumi.Input<K8sDistribution>;
  /** `debug`: debug logging and the debug configuration of the shims. Default false. */
  debug?: pulumi.Input<boolean>;
  /** `shims.<name>`: per-shim settings, keyed by shim name (e.g. `qemu`, `qemu-snp`). */
  shims?: pulumi.Input<{ [name: string]: pulumi.Input<ShimSettings> }>;
  /** `shims.disableAll` (a schema map cannot hold it beside the shims): turn off every shim not explicitly enabled. */
  disableAllShims?: pulumi.Input<boolean>;
  /** `defaultShim.<arch>`. */
  defaultShim?: pulumi.Input<DefaultShims>;
  /** `snapshotter.*`. */
  snapshotter?: pulumi.Input<SnapshotterSettings>;
  /** `tolerations` of the DaemonSet, the dispatcher and the per-node Jobs. */
  tolerations?: pulumi.Input<pulumi.Input<Toleration>[]>;
  /** `nodeSelector` of the DaemonSet (daemonset mode; job mode selects with `job.*`). */
  nodeSelector?: pulumi.Input<{ [key: string]: pulumi.Input<string> }>;
  /** `priorityClassName`. Default `system-node-critical`. */
  priorityClassName?: pulumi.Input<string>;
  /** `env.*`. */
  env?: pulumi.Input<EnvSettings>;
  /** `job.*` (job mode only). */
  job?: pulumi.Input<JobSettings>;

  /**
   * Kubeconfig (YAML/JSON text, or a file path) with which the rollout creates and watches the hook Jobs.
   * Default: `$KUBECONFIG`, `~/.kube/config`, or in-cluster. Kept secret. With an explicit Kubernetes provider,
   * pass the same kubeconfig here (a provider's configuration cannot be read back).
   */
  kubeconfig?: pulumi.Input<string>;
  /**
   * Which dispatcher the install and cleanup Jobs run (job mode). Default `bundled`. A plain value: it decides
   * whether the dispatcher script ConfigMap exists.
   */
  dispatcherImplementation?: DispatcherImplementation;
  /** Any string; changing it runs the install again (e.g. a date). */
  rerunToken?: pulumi.Input<string>;
  /** How the install/cleanup runs are waited for. */
  rollout?: pulumi.Input<RolloutArgs>;
}

/** `dispatcherImplementation`: which dispatcher the install and cleanup hook Jobs run (job mode). */
export enum DispatcherImplementation {
  /** This project's dispatcher, bundled into a ConfigMap and run by a pinned stock Node.js image (default). */
  Bundled = "bundled",
  /** The chart's `job.dispatcherImage`. */
  Upstream = "upstream",
}

/** `rollout.*`: how the hooks are run and waited for (the KataRollout resource). */
export interface RolloutArgs {
  /** Limit of one install or cleanup run, in seconds (integer ≥ 1). Default 3600. */
  timeoutSeconds?: pulumi.Input<number>;
  /** Propose (preview) and run (up) installs for selected nodes without a successful one. Default true. */
  healDrift?: pulumi.Input<boolean>;
  /** Run the cleanup dispatcher on destroy (job mode). Default true. */
  cleanupOnDestroy?: pulumi.Input<boolean>;
  /** A pod stuck this long (image pull, unschedulable, crash loop) fails its node early, in seconds (integer ≥ 1). Default 300. */
  stuckGraceSeconds?: pulumi.Input<number>;
}

/** One node's entry in output `nodeOutcomes.nodes`. */
export interface NodeOutcomeOutput {
  /**
   * `succeeded`, `failed`, `skipped`, or `unknown`: the node's Job vanished (TTL, a user, GC) before anyone saw it
   * end and the node carries no record of it; never reported as a failure (`reason` says why).
   */
  outcome: string;
  /** Why it failed or was skipped, e.g. `BackoffLimitExceeded`, `Tainted`, `Timeout`, `Stuck`. */
  reason?: string;
  /** Index into `nodeOutcomes.messages`: what the failed pod said (container, exit code, termination message). */
  message?: number;
}

/**
 * Output `nodeOutcomes`: every node of the last install run, compact enough for a 10,000-node checkpoint (a
 * failure message is stored once however many nodes share it). Read one node with `nodeOutcome(outcomes, name)`.
 */
export interface NodeOutcomesOutput {
  /** By node name: outcome, reason, message index. */
  nodes: { [node: string]: NodeOutcomeOutput };
  /** The distinct failure messages the entries index. */
  messages: string[];
}

/** Counts of the last rollout run (output `summary`). */
export interface RolloutSummaryOutput {
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** Nodes whose outcome nobody could know (their Job vanished unrecorded); present only when there are some. */
  unknown?: number;
  durationSeconds: number;
}
