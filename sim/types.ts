// Public types of kube-sim, the in-process Kubernetes API simulator. Other parts (dispatcher, waiter,
// benchmarks) code against these names: change them only additively.

/** Any stored Kubernetes object, as JSON. Objects handed out by the simulator are copies. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [field: string]: unknown;
}

/** Resource names as in URLs (plural, lower case). */
export type ResourceName =
  | "nodes"
  | "namespaces"
  | "configmaps"
  | "serviceaccounts"
  | "pods"
  | "events"
  | "jobs"
  | "daemonsets"
  | "roles"
  | "clusterroles"
  | "rolebindings"
  | "clusterrolebindings"
  | "secrets"
  | "services"
  | "runtimeclasses"
  | "controllerrevisions"
  | "leases";

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";

export type PropagationPolicy = "Foreground" | "Background" | "Orphan";

// ---------------------------------------------------------------------------------------------------
// Outcome programs: what the simulated kubelet does with the pods of one node.

/** How a failing attempt ends. Defaults: the first init container if the pod has one named in
 * `container`, else the first regular container; exit code 1, reason "Error", a message naming the node. */
export interface ContainerFailure {
  /** Name of the (init or regular) container that fails. Default: the pod's first regular container. */
  container?: string;
  exitCode?: number;
  /** Termination reason (kubelet: "Error" for a non-zero exit, "OOMKilled", ...). */
  reason?: string;
  /** The container's termination message (its termination log), e.g. "no usable virtualization backend". */
  message?: string;
}

/**
 * Per-node behaviour of pods (Job pods and DaemonSet pods). Durations are in SIMULATED milliseconds;
 * when omitted they default to the simulator's `jobDurationMs`.
 */
export type OutcomeProgram =
  /** Every attempt runs `durationMs` and exits 0. */
  | { kind: "succeed"; durationMs?: number }
  /** The first `failures` attempts on this node fail (after `durationMs`), later attempts succeed. */
  | { kind: "failThenSucceed"; failures: number; durationMs?: number; failure?: ContainerFailure }
  /** Every attempt fails after `durationMs`. */
  | { kind: "fail"; durationMs?: number; failure?: ContainerFailure }
  /** The container starts and never ends (only activeDeadlineSeconds or a delete stops it). */
  | { kind: "hang" }
  /** `afterMs` after the first pod starts, the node's Ready condition turns Unknown (kubelet stopped
   * posting) and it gets the `node.kubernetes.io/unreachable:NoExecute` taint; pods stop progressing. */
  | { kind: "nodeNotReady"; afterMs?: number }
  /** `afterMs` after the first pod starts, the Node object is deleted; PodGC then fails its pods. */
  | { kind: "nodeDeleted"; afterMs?: number }
  /** The image never pulls: waiting ErrImagePull, then ImagePullBackOff, forever. */
  | { kind: "imagePullError"; image?: string; message?: string }
  /** The kubelet refuses the pod: phase Failed with this reason (e.g. "OutOfcpu", "NodeAffinity"). */
  | { kind: "rejectAdmission"; reason?: string; message?: string };

// ---------------------------------------------------------------------------------------------------
// Fleet

/** One node of a fleet file. */
export interface FleetNode {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  taints?: { key: string; value?: string; effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute" }[];
  /** `status.nodeInfo.containerRuntimeVersion`; "" means unknown (left empty). */
  containerRuntimeVersion?: string;
  /** `status.nodeInfo.machineID`; "" means unknown. */
  machineID?: string;
  architecture?: string;
  ready?: boolean;
  unschedulable?: boolean;
  outcome?: OutcomeProgram;
}

export interface FleetFile {
  /** Outcome for nodes without their own `outcome`. Default: succeed. */
  defaultOutcome?: OutcomeProgram;
  nodes: FleetNode[];
}

export interface FleetOptions {
  /** Generated fleet size (ignored when `fleet` is given). Default 0. */
  nodes?: number;
  /** Seed for everything random (fleet shape, names, fault dice). Default 1. */
  seed?: number;
  /** How many of the generated nodes are control-plane nodes (role label + NoSchedule taint). Default 0. */
  controlPlane?: number;
  /** How many generated workers carry `dedicated=gpu:NoSchedule`, which nothing tolerates by default. */
  tainted?: number;
  /** Fraction (0..1) of generated nodes whose outcome program is `fail` (every attempt fails). */
  failRate?: number;
  /** Simulated duration of one successful pod run, ms. Default 120000 (2 minutes). */
  jobDurationMs?: number;
  /** Simulated milliseconds per real millisecond. Default 1 (real time); 6000 makes 2 minutes last 20 ms. */
  timeScale?: number;
  /** A fleet file path or its parsed content (validated with zod). Replaces the generated fleet. */
  fleet?: string | FleetFile;
}

// ---------------------------------------------------------------------------------------------------
// Faults

export interface FaultRule {
  /** Verbs the rule applies to; all when absent. */
  verbs?: Verb[];
  /** Resources the rule applies to; all when absent. */
  resources?: ResourceName[];
  /** Probability (0..1) that a matching request is answered with an error instead. */
  errorRate?: number;
  /** Which errors to draw from (uniformly). Default [500]. */
  errorCodes?: (429 | 500 | 503 | 504)[];
  /** Retry-After seconds for 429 answers. Default 1. */
  retryAfterSeconds?: number;
  /** For 429: answer as kube-apiserver's flow control does (plain text body) instead of a Status. */
  plainText429?: boolean;
  /** Extra latency added to every matching request, real ms. */
  latencyMs?: number;
  /** Probability that the TCP connection is destroyed without an answer. */
  resetRate?: number;
  /** Probability that a list request carrying `continue` answers 410 Expired. */
  expireContinueRate?: number;
}

export interface FaultConfig {
  /** Seed of the fault dice. Default: the simulator's seed. */
  seed?: number;
  rules?: FaultRule[];
  /** Every open watch stream is cut this often (real seconds); 0/absent = never. */
  dropWatchEverySeconds?: number;
  /** How streams are cut: "reset" destroys the connection (a network drop; clients see an error), "close"
   * ends the response cleanly (as a server-side timeout does). Default "reset". */
  dropWatchMode?: "reset" | "close";
}

/** Runtime control of fault injection (tests turn faults on mid-run). */
export interface FaultControl {
  /** Replaces the whole configuration. */
  set(config: FaultConfig): void;
  /** Turns every fault off. */
  clear(): void;
  current(): FaultConfig;
  /** How many faults of each kind were injected so far, e.g. {"error:503": 4, reset: 1, "watch-drop": 2}. */
  injected(): Record<string, number>;
}

// ---------------------------------------------------------------------------------------------------
// Real execution

/**
 * Real execution of Job pods as local Node.js child processes. A Job pod is executed for real when its
 * (first) container image is listed in `nodeImages`, or when the pod template carries the label
 * `kube-sim/execute: "true"`. Its command/args are run with `process.execPath` after dropping a leading
 * `node`/`nodejs` word; ConfigMap volumes are materialized into a temporary folder and every mount path
 * occurring in command/args/env values is rewritten to it.
 */
export interface ExecuteOptions {
  /** Container images treated as "a Node.js image"; an entry ending in "*" matches by prefix. */
  nodeImages?: string[];
  /** Extra environment for every executed process. */
  env?: Record<string, string>;
  /** Real-time limit for one process (ms); killed with SIGTERM, then SIGKILL after 2 s. Default 120000. */
  timeoutMs?: number;
}

export interface ExecutionRecord {
  namespace: string;
  pod: string;
  job?: string;
  node?: string;
  command: string[];
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Real epoch ms. */
  startedAt: number;
  finishedAt?: number;
}

// ---------------------------------------------------------------------------------------------------
// Audit

export interface RequestRecord {
  /** Simulated epoch ms when the request arrived. */
  time: number;
  /** "admin", "system:serviceaccount:<ns>:<name>", or "anonymous". */
  user: string;
  verb: Verb | string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** The representation the client asked for instead of the objects (Accept `as=`): metadata only, or a Table. */
  as?: "Table" | "PartialObjectMetadata" | "PartialObjectMetadataList";
  code: number;
  /** Real ms spent answering (for watch: until headers were sent). */
  durationMs: number;
}

export type TransitionKind = "created" | "updated" | "deleted" | "jobActive" | "jobComplete" | "jobFailed";

export interface TransitionRecord {
  /** Simulated epoch ms. */
  time: number;
  kind: TransitionKind;
  resource: string;
  namespace?: string;
  name: string;
  resourceVersion: string;
  /** Short status summary, e.g. "Pending", "Complete/CompletionsReached", "Failed/BackoffLimitExceeded". */
  status?: string;
}

export type JobOutcome = "active" | "succeeded" | "failed" | "deleted";

export interface NodeJobRecord {
  namespace: string;
  name: string;
  owner?: string;
  outcome: JobOutcome;
  reason?: string;
  createdAt: number;
  finishedAt?: number;
}

export interface NodeJobsReport {
  jobs: NodeJobRecord[];
  /** The most Jobs pinned to this node that were in flight (created, not finished, not deleted) at once. */
  maxConcurrentActive: number;
}

export interface TimelinePoint {
  /** Simulated epoch ms. */
  time: number;
  active: number;
}

/**
 * Invariant queries over everything the simulator saw. A Job counts as *active* (in flight) from its
 * creation until it gets a Complete/Failed condition or is deleted, whichever comes first.
 */
export interface AuditApi {
  /** The request log (newest last; bounded by `auditRequestLimit`). */
  requests(
    filter?: Partial<Pick<RequestRecord, "verb" | "resource" | "namespace" | "user" | "code">>,
  ): RequestRecord[];
  /** Request counts keyed "<verb> <resource>[/<subresource>]", e.g. "create jobs", "list nodes". */
  requestCounts(): Record<string, number>;
  /** Object transitions (bounded like the request log), optionally for one resource. */
  transitions(resource?: string): TransitionRecord[];
  /** Peak number of concurrently active Jobs, per value of label `kata-deploy-job-dispatcher/owner`. */
  peakActiveJobsByOwner(): Record<string, number>;
  /** Active Jobs over time (one point per change), for every Job or for one owner label value. */
  activeJobsTimeline(owner?: string): TimelinePoint[];
  /** Per node (by `spec.template.spec.nodeName`): its Jobs with outcomes and the max concurrency on it. */
  jobsByNode(): Record<string, NodeJobsReport>;
  /** Forget everything recorded so far (counters restart from the current state). */
  reset(): void;
}

/** Real-time stamps on the API server's side (sim/latency.ts): a dispatcher's reaction without the simulator's lag. */
export interface LatencyProbeApi {
  /** Starts stamping Jobs carrying the owner label (with this value, when given). Idempotent. */
  enable(owner?: string): void;
  readonly enabled: boolean;
  /** Real ms (performance.now of the simulator's process), ascending: each Job's end first shown to a client. */
  jobEndsShown(): number[];
  /** Real ms, ascending: arrival of each Job create request that created a Job. */
  jobCreatesArrived(): number[];
}

// ---------------------------------------------------------------------------------------------------
// Simulator

export interface SimulatorOptions extends FleetOptions {
  /** Enforce RBAC from the stored Roles/ClusterRoles/bindings for non-admin tokens. Default false. */
  authz?: boolean;
  /** TCP port on 127.0.0.1; default 0 (random). */
  port?: number;
  faults?: FaultConfig;
  /** Enables real execution of Node.js Job pods (see ExecuteOptions). */
  execute?: ExecuteOptions;
  /** Watch history kept per resource (events); older resourceVersions answer 410. Default 10000. */
  watchHistory?: number;
  /** Real ms a continue token stays valid. Default 300000 (like etcd compaction every 5 minutes). */
  continueTtlMs?: number;
  /** Real ms between BOOKMARK events on watches that asked for them. Default 1000. */
  bookmarkIntervalMs?: number;
  /** Max request and transition records kept (counters are always complete). Default 200000. */
  auditRequestLimit?: number;
  /** Simulated epoch ms at start. Default: real now. */
  startTime?: number;
  /** Folder for kubeconfig files. Default: a new temporary folder, removed on close. */
  workDir?: string;
  /** Simulated ms a pod spends Pending (ContainerCreating) before it runs. Default 1000. */
  podStartDelayMs?: number;
  /**
   * Serve plain http instead of HTTPS (default false). Only for in-process tests whose subject is not the
   * transport and whose client opens a connection per request (client-node 2.x), where a TLS handshake per
   * request would dominate: thousands of paged lists. Kubeconfigs then say `insecure-skip-tls-verify`
   * (client-node refuses plain http otherwise) and Go clients (kubectl, Helm) will not send their token.
   */
  plainHttp?: boolean;
}

/** Options of the direct (no HTTP) list helper. */
export interface DirectListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface Simulator {
  /** https://127.0.0.1:<port> (a certificate signed by `caPem`). */
  readonly url: string;
  readonly port: number;
  /** PEM of the CA generated at start that signs the serving certificate (kubeconfigs carry it). */
  readonly caPem: string;
  /** File holding `caPem` (for `curl --cacert`, `NODE_EXTRA_CA_CERTS`, ...). */
  readonly caPath: string;
  /** kubeconfig for the admin token. */
  readonly kubeconfigPath: string;
  readonly adminToken: string;
  /** A bearer token that authenticates as ServiceAccount `<namespace>/<name>`. */
  tokenFor(namespace: string, serviceAccountName: string): string;
  /** Path of a kubeconfig using tokenFor(namespace, name), with that namespace as context namespace. */
  kubeconfigFor(namespace: string, serviceAccountName: string): string;
  readonly audit: AuditApi;
  /** Real-time reaction probe (sim/latency.ts); off until `latency.enable()`. */
  readonly latency: LatencyProbeApi;
  /** Connections the API server accepted so far (TLS: completed handshakes). */
  connectionsOpened(): number;
  readonly faults: FaultControl;
  /** Simulated now, epoch ms. */
  now(): number;
  /** Resolves after `simulatedMs` of simulated time. */
  sleep(simulatedMs: number): Promise<void>;

  // Direct store access (no HTTP, no auth, no faults); objects are copies.
  get(resource: ResourceName, namespace: string | undefined, name: string): KubeObject | undefined;
  list(resource: ResourceName, options?: DirectListOptions): KubeObject[];
  create(resource: ResourceName, object: KubeObject): KubeObject;
  /** Replaces the object (resourceVersion optional: absent = unconditional). Status is replaced too. */
  update(resource: ResourceName, object: KubeObject): KubeObject;
  /** JSON merge patch (RFC 7386) by default, or a JSON patch (RFC 6902) array. Status is patched too. */
  patch(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    patch: Record<string, unknown> | unknown[],
  ): KubeObject;
  delete(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    options?: { propagationPolicy?: PropagationPolicy },
  ): void;

  /** Sets the outcome program of a node's pods created from now on (pods keep the program they were created under). */
  setOutcome(node: string, program: OutcomeProgram): void;
  /** Records of really executed pods (see ExecuteOptions). */
  executions(): ExecutionRecord[];
  /** Resolves when `predicate` holds for the store, checked after every write; rejects after `timeoutMs` real ms. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}
