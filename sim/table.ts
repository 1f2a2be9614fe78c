// Server-side printing: the meta.k8s.io/v1 Table a `kubectl get` asks for (Accept `as=Table`), with the columns
// kube-apiserver's printers give each kind it serves here (priority 1 = shown with `-o wide`), and the generic
// "Name / Created At" table of kinds without a printer. Ages use the simulated clock.
import type { ResourceInfo } from "./resources";
import type { KubeObject, ResourceName } from "./types";

type Cell = string | number;
type Rec = Record<string, unknown>;

interface Column {
  name: string;
  type: "string" | "integer" | "date";
  format?: "name";
  description: string;
  priority?: 1;
  cell(o: KubeObject, now: number): Cell;
}

/** Kubernetes' duration.HumanDuration (the AGE column). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8)
    return days % 365 === 0 ? `${days / 365}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}

const since = (time: unknown, now: number): string =>
  typeof time === "string" ? humanDuration(now - Date.parse(time)) : "<unknown>";
const rec = (v: unknown): Rec => (v && typeof v === "object" ? (v as Rec) : {});
const arr = (v: unknown): Rec[] => (Array.isArray(v) ? (v as Rec[]) : []);
const num = (v: unknown): number => (typeof v === "number" ? v : 0);

const nameColumn: Column = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name must be unique within a namespace.",
  cell: (o) => o.metadata.name ?? "",
};
const ageColumn: Column = {
  name: "Age",
  type: "string",
  description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
  cell: (o, now) => since(o.metadata.creationTimestamp, now),
};

function selectorString(labels: Rec | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? "<none>" : entries.map(([k, v]) => `${k}=${String(v)}`).join(",");
}

function labelSelectorString(selector: Rec | undefined): string {
  const parts = Object.entries(rec(selector?.matchLabels)).map(([k, v]) => `${k}=${String(v)}`);
  for (const e of arr(selector?.matchExpressions)) {
    const values = (e.values as string[] | undefined) ?? [];
    if (e.operator === "Exists") parts.push(String(e.key));
    else if (e.operator === "DoesNotExist") parts.push(`!${String(e.key)}`);
    else parts.push(`${String(e.key)} ${String(e.operator).toLowerCase()} (${values.join(",")})`);
  }
  return parts.length === 0 ? "<none>" : parts.sort().join(",");
}

function nodeStatus(o: KubeObject): string {
  const ready = arr(o.status?.conditions).find((c) => c.type === "Ready");
  const parts = [ready?.status === "True" ? "Ready" : ready?.status === "False" ? "NotReady" : "Unknown"];
  if (o.spec?.unschedulable === true) parts.push("SchedulingDisabled");
  return parts.join(",");
}

function nodeRoles(o: KubeObject): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(o.metadata.labels ?? {})) {
    if (k.startsWith("node-role.kubernetes.io/")) roles.add(k.slice("node-role.kubernetes.io/".length));
    else if (k === "kubernetes.io/role" && v) roles.add(v);
  }
  return roles.size === 0 ? "<none>" : [...roles].sort().join(",");
}

function nodeAddress(o: KubeObject, type: string): string {
  return String(arr(o.status?.addresses).find((a) => a.type === type)?.address ?? "<none>");
}

/** The STATUS column of `kubectl get pods` (kube-apiserver's printPod, without sidecar details). */
export function podStatus(o: KubeObject): string {
  const status = rec(o.status);
  let reason = String(status.reason ?? status.phase ?? "");
  const inits = arr(status.initContainerStatuses);
  let initializing = false;
  inits.forEach((c, i) => {
    if (initializing) return;
    const state = rec(c.state);
    const terminated = rec(state.terminated);
    const waiting = rec(state.waiting);
    if (state.terminated && num(terminated.exitCode) === 0) return;
    initializing = true;
    if (state.terminated) {
      reason = terminated.reason
        ? `Init:${String(terminated.reason)}`
        : terminated.signal
          ? `Init:Signal:${String(terminated.signal)}`
          : `Init:ExitCode:${num(terminated.exitCode)}`;
    } else if (waiting.reason && waiting.reason !== "PodInitializing") {
      reason = `Init:${String(waiting.reason)}`;
    } else {
      reason = `Init:${i}/${arr(rec(o.spec).initContainers).length}`;
    }
  });
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...arr(status.containerStatuses)].reverse()) {
      const state = rec(c.state);
      const waiting = rec(state.waiting);
      const terminated = rec(state.terminated);
      if (waiting.reason) reason = String(waiting.reason);
      else if (terminated.reason) reason = String(terminated.reason);
      else if (state.terminated)
        reason = terminated.signal
          ? `Signal:${String(terminated.signal)}`
          : `ExitCode:${num(terminated.exitCode)}`;
      else if (c.ready === true && state.running) hasRunning = true;
    }
    if (reason === "Completed" && hasRunning) {
      const ready = arr(status.conditions).some((c) => c.type === "Ready" && c.status === "True");
      reason = ready ? "Running" : "NotReady";
    }
  }
  if (o.metadata.deletionTimestamp) reason = status.reason === "NodeLost" ? "Unknown" : "Terminating";
  return reason;
}

function podRestarts(o: KubeObject, now: number): string {
  let restarts = 0;
  let last: number | undefined;
  for (const c of [...arr(o.status?.initContainerStatuses), ...arr(o.status?.containerStatuses)]) {
    restarts += num(c.restartCount);
    const finished = rec(rec(c.lastState).terminated).finishedAt;
    if (typeof finished === "string") last = Math.max(last ?? 0, Date.parse(finished));
  }
  return last !== undefined && restarts > 0
    ? `${restarts} (${humanDuration(now - last)} ago)`
    : String(restarts);
}

function jobStatus(o: KubeObject): string {
  const has = (type: string): boolean =>
    arr(o.status?.conditions).some((c) => c.type === type && c.status === "True");
  if (has("Complete")) return "Complete";
  if (has("Failed")) return "Failed";
  if (o.metadata.deletionTimestamp) return "Terminating";
  if (has("Suspended")) return "Suspended";
  if (has("FailureTarget")) return "FailureTarget";
  if (has("SuccessCriteriaMet")) return "SuccessCriteriaMet";
  return "Running";
}

function jobCompletions(o: KubeObject): string {
  const succeeded = num(o.status?.succeeded);
  const completions = o.spec?.completions;
  if (typeof completions === "number") return `${succeeded}/${completions}`;
  return `${succeeded}/1 of ${num(o.spec?.parallelism ?? 1)}`;
}

function jobDuration(o: KubeObject, now: number): string {
  const start = o.status?.startTime;
  if (typeof start !== "string") return "";
  const end = o.status?.completionTime;
  return humanDuration((typeof end === "string" ? Date.parse(end) : now) - Date.parse(start));
}

function templateContainers(o: KubeObject): Rec[] {
  return arr(rec(rec(rec(o.spec).template).spec).containers);
}

const containersColumns: Column[] = [
  {
    name: "Containers",
    type: "string",
    priority: 1,
    description: "Names of each container in the template.",
    cell: (o) =>
      templateContainers(o)
        .map((c) => String(c.name))
        .join(","),
  },
  {
    name: "Images",
    type: "string",
    priority: 1,
    description: "Images referenced by each container in the template.",
    cell: (o) =>
      templateContainers(o)
        .map((c) => String(c.image))
        .join(","),
  },
  {
    name: "Selector",
    type: "string",
    priority: 1,
    description: "A label query over pods.",
    cell: (o) => labelSelectorString(rec(o.spec?.selector)),
  },
];

function column(name: string, cell: Column["cell"], extra: Partial<Column> = {}): Column {
  return { name, type: "string", description: name, cell, ...extra };
}
const intColumn = (name: string, cell: Column["cell"]): Column => column(name, cell, { type: "integer" });

const COLUMNS: Partial<Record<ResourceName, Column[]>> = {
  nodes: [
    nameColumn,
    column("Status", nodeStatus),
    column("Roles", nodeRoles),
    ageColumn,
    column("Version", (o) => String(rec(o.status?.nodeInfo).kubeletVersion ?? "")),
    column("Internal-IP", (o) => nodeAddress(o, "InternalIP"), { priority: 1 }),
    column("External-IP", (o) => nodeAddress(o, "ExternalIP"), { priority: 1 }),
    column("OS-Image", (o) => String(rec(o.status?.nodeInfo).osImage ?? "<unknown>"), { priority: 1 }),
    column("Kernel-Version", (o) => String(rec(o.status?.nodeInfo).kernelVersion ?? "<unknown>"), {
      priority: 1,
    }),
    column(
      "Container-Runtime",
      (o) => String(rec(o.status?.nodeInfo).containerRuntimeVersion ?? "<unknown>"),
      {
        priority: 1,
      },
    ),
  ],
  pods: [
    nameColumn,
    column("Ready", (o) => {
      const statuses = arr(o.status?.containerStatuses);
      const total = arr(o.spec?.containers).length;
      return `${statuses.filter((c) => c.ready === true).length}/${total}`;
    }),
    column("Status", podStatus),
    column("Restarts", podRestarts),
    ageColumn,
    column("IP", (o) => String(o.status?.podIP ?? "<none>"), { priority: 1 }),
    column("Node", (o) => String(o.spec?.nodeName ?? "<none>"), { priority: 1 }),
    column("Nominated Node", (o) => String(o.status?.nominatedNodeName ?? "<none>"), { priority: 1 }),
    column("Readiness Gates", (o) => (arr(o.spec?.readinessGates).length ? "0/0" : "<none>"), {
      priority: 1,
    }),
  ],
  jobs: [
    nameColumn,
    column("Status", jobStatus),
    column("Completions", jobCompletions),
    column("Duration", jobDuration),
    ageColumn,
    ...containersColumns,
  ],
  daemonsets: [
    nameColumn,
    intColumn("Desired", (o) => num(o.status?.desiredNumberScheduled)),
    intColumn("Current", (o) => num(o.status?.currentNumberScheduled)),
    intColumn("Ready", (o) => num(o.status?.numberReady)),
    intColumn("Up-to-date", (o) => num(o.status?.updatedNumberScheduled)),
    intColumn("Available", (o) => num(o.status?.numberAvailable)),
    column("Node Selector", (o) => selectorString(rec(rec(rec(o.spec?.template).spec).nodeSelector))),
    ageColumn,
    ...containersColumns,
  ],
  namespaces: [nameColumn, column("Status", (o) => String(o.status?.phase ?? "")), ageColumn],
  configmaps: [
    nameColumn,
    intColumn("Data", (o) => Object.keys(rec(o.data)).length + Object.keys(rec(o.binaryData)).length),
    ageColumn,
  ],
  secrets: [
    nameColumn,
    column("Type", (o) => String(o.type ?? "Opaque")),
    intColumn("Data", (o) => Object.keys(rec(o.data)).length),
    ageColumn,
  ],
  serviceaccounts: [nameColumn, intColumn("Secrets", (o) => arr(o.secrets).length), ageColumn],
  services: [
    nameColumn,
    column("Type", (o) => String(o.spec?.type ?? "ClusterIP")),
    column("Cluster-IP", (o) => String(o.spec?.clusterIP ?? "<none>")),
    column("External-IP", (o) => arr(o.spec?.externalIPs).map(String).join(",") || "<none>"),
    column(
      "Port(s)",
      (o) =>
        arr(o.spec?.ports)
          .map(
            (p) => `${num(p.port)}${p.nodePort ? `:${num(p.nodePort)}` : ""}/${String(p.protocol ?? "TCP")}`,
          )
          .join(",") || "<none>",
    ),
    ageColumn,
    column("Selector", (o) => selectorString(rec(o.spec?.selector)), { priority: 1 }),
  ],
  runtimeclasses: [nameColumn, column("Handler", (o) => String(o.handler ?? "")), ageColumn],
  leases: [nameColumn, column("Holder", (o) => String(o.spec?.holderIdentity ?? "")), ageColumn],
  controllerrevisions: [
    nameColumn,
    column("Controller", (o) => {
      const owner = (o.metadata.ownerReferences ?? []).find((r) => r.controller);
      return owner ? `${owner.kind.toLowerCase()}.${owner.apiVersion.split("/")[0]}/${owner.name}` : "<none>";
    }),
    intColumn("Revision", (o) => num(o.revision)),
    ageColumn,
  ],
};

/** Kinds without a printer get the generic table of kube-apiserver's default table convertor. */
const DEFAULT_COLUMNS: Column[] = [
  nameColumn,
  {
    name: "Created At",
    type: "date",
    description:
      "CreationTimestamp is a timestamp representing the server time when this object was created.",
    cell: (o) => o.metadata.creationTimestamp ?? "",
  },
];

/** Does this Accept header ask for a Table (kubectl get's `application/json;as=Table;v=v1;g=meta.k8s.io`)? */
export function wantsTable(accept: string | undefined): boolean {
  for (const part of (accept ?? "").split(",")) {
    const params = part.split(";").map((p) => p.trim());
    if (params.includes("as=Table") && params.includes("g=meta.k8s.io")) return true;
    if (params[0] === "application/json" || params[0] === "*/*") return false;
  }
  return false;
}

/**
 * Does this Accept header ask for metadata only (`application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`
 * on a list, `as=PartialObjectMetadata` on a get: what client-go's metadata client sends)? Returns the kind asked for.
 */
export function wantsMetadataOnly(
  accept: string | undefined,
): "PartialObjectMetadata" | "PartialObjectMetadataList" | undefined {
  for (const part of (accept ?? "").split(",")) {
    const params = part.split(";").map((p) => p.trim());
    if (!params.includes("g=meta.k8s.io")) {
      if (params[0] === "application/json" || params[0] === "*/*") return undefined;
      continue;
    }
    if (params.includes("as=PartialObjectMetadataList")) return "PartialObjectMetadataList";
    if (params.includes("as=PartialObjectMetadata")) return "PartialObjectMetadata";
  }
  return undefined;
}

/** An object reduced to its metadata, as the API server sends it for `as=PartialObjectMetadata`. */
export function partialObjectMetadata(o: KubeObject): Rec {
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
}

export type IncludeObject = "None" | "Metadata" | "Object";

export function toTable(
  info: ResourceInfo,
  items: readonly KubeObject[],
  now: number,
  listMeta: Rec,
  includeObject: IncludeObject = "Metadata",
): Rec {
  const columns = COLUMNS[info.name] ?? DEFAULT_COLUMNS;
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? "",
      description: c.description,
      priority: c.priority ?? 0,
    })),
    rows: items.map((o) => {
      const row: Rec = { cells: columns.map((c) => c.cell(o, now)) };
      if (includeObject === "Object") row.object = o;
      else if (includeObject === "Metadata") row.object = partialObjectMetadata(o);
      return row;
    }),
  };
}
