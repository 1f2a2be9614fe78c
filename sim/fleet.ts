// Fleets: generated deterministically from a seed (roles, labels, taints, architectures, runtime
// versions, machine IDs, awkward names) or read from a JSON fleet file validated with zod.
import * as fs from "node:fs";
import { z } from "zod";
import { dns1123SubdomainErrors, labelKeyErrors, labelValueErrors } from "../kube/validation";
import { seededRandom } from "./faults";
import type { FleetFile, FleetNode, FleetOptions, KubeObject, OutcomeProgram } from "./types";

export const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
export const WORKER_LABEL = "node-role.kubernetes.io/worker";
export const DEDICATED_TAINT = { key: "dedicated", value: "gpu", effect: "NoSchedule" as const };
export const GENERATED_FAILURE_MESSAGE = "no usable virtualization backend";

// ---------------------------------------------------------------------------------------------------
// Fleet file schema

const failureSchema = z
  .object({
    container: z.string().min(1).optional(),
    exitCode: z.number().int().min(1).max(255).optional(),
    reason: z.string().min(1).optional(),
    message: z.string().optional(),
  })
  .strict();

const duration = z.number().nonnegative();

export const outcomeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("succeed"), durationMs: duration.optional() }).strict(),
  z
    .object({
      kind: z.literal("failThenSucceed"),
      failures: z.number().int().min(1),
      durationMs: duration.optional(),
      failure: failureSchema.optional(),
    })
    .strict(),
  z
    .object({ kind: z.literal("fail"), durationMs: duration.optional(), failure: failureSchema.optional() })
    .strict(),
  z.object({ kind: z.literal("hang") }).strict(),
  z.object({ kind: z.literal("nodeNotReady"), afterMs: duration.optional() }).strict(),
  z.object({ kind: z.literal("nodeDeleted"), afterMs: duration.optional() }).strict(),
  z
    .object({
      kind: z.literal("imagePullError"),
      image: z.string().optional(),
      message: z.string().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal("rejectAdmission"),
      reason: z.string().optional(),
      message: z.string().optional(),
    })
    .strict(),
]);

const labelMap = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  for (const [k, v] of Object.entries(labels)) {
    const keyProblems = labelKeyErrors(k);
    if (keyProblems.length > 0)
      ctx.addIssue({
        code: "custom",
        path: [k],
        message: `invalid label key "${k}": ${keyProblems.join("; ")}`,
      });
    const valueProblems = labelValueErrors(v);
    if (valueProblems.length > 0)
      ctx.addIssue({
        code: "custom",
        path: [k],
        message: `invalid label value "${v}": ${valueProblems.join("; ")}`,
      });
  }
});

const nodeSchema = z
  .object({
    name: z.string().superRefine((name, ctx) => {
      const problems = dns1123SubdomainErrors(name);
      if (problems.length > 0)
        ctx.addIssue({ code: "custom", message: `invalid node name "${name}": ${problems.join("; ")}` });
    }),
    labels: labelMap.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    taints: z
      .array(
        z
          .object({
            key: z.string().min(1),
            value: z.string().optional(),
            effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
          })
          .strict(),
      )
      .optional(),
    containerRuntimeVersion: z.string().optional(),
    machineID: z.string().optional(),
    architecture: z.string().min(1).optional(),
    ready: z.boolean().optional(),
    unschedulable: z.boolean().optional(),
    outcome: outcomeSchema.optional(),
  })
  .strict();

export const fleetFileSchema = z
  .object({
    defaultOutcome: outcomeSchema.optional(),
    nodes: z.array(nodeSchema),
  })
  .strict();

/** Duplicate node names, checked on the raw content so they are reported next to schema problems. */
function duplicateNames(content: unknown): string[] {
  const nodes = (content as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes)) return [];
  const seen = new Map<string, number>();
  const problems: string[] = [];
  nodes.forEach((n: unknown, i: number) => {
    const name = (n as { name?: unknown } | null)?.name;
    if (typeof name !== "string") return;
    const first = seen.get(name);
    if (first !== undefined)
      problems.push(`  nodes[${i}].name: duplicate node name "${name}" (first at nodes[${first}])`);
    else seen.set(name, i);
  });
  return problems;
}

export class FleetFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FleetFileError";
  }
}

/** Parses and validates fleet file content; errors list every problem with its path. */
export function parseFleetFile(content: unknown, source = "fleet file"): FleetFile {
  const result = fleetFileSchema.safeParse(content);
  const duplicates = duplicateNames(content);
  if (result.success && duplicates.length === 0) return result.data;
  const lines = (result.success ? [] : result.error.issues).map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
    return `  ${path ? path.replace(/^\./, "") : "(root)"}: ${issue.message}`;
  });
  throw new FleetFileError(`${source} is invalid:\n${[...lines, ...duplicates].join("\n")}`);
}

export function readFleetFile(file: string): FleetFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new FleetFileError(`cannot read fleet file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FleetFileError(`fleet file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseFleetFile(json, `fleet file ${file}`);
}

// ---------------------------------------------------------------------------------------------------
// Generation

const ARCHES = [
  { arch: "amd64", weight: 0.75 },
  { arch: "arm64", weight: 0.18 },
  { arch: "s390x", weight: 0.04 },
  { arch: "ppc64le", weight: 0.03 },
];
const RUNTIMES = ["containerd://1.7.27", "containerd://2.0.5", "containerd://2.1.3", "cri-o://1.33.2"];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function hex(random: () => number, length: number): string {
  let s = "";
  while (s.length < length)
    s += Math.floor(random() * 0x100000000)
      .toString(16)
      .padStart(8, "0");
  return s.slice(0, length);
}

/** A DNS subdomain of exactly `length` characters (<= 253) built from `prefix`. */
function longName(prefix: string, length: number, random: () => number): string {
  let s = prefix;
  while (s.length < length) s += `.seg${hex(random, 6)}`;
  s = s.slice(0, length);
  return /[a-z0-9]$/.test(s) ? s : `${s.slice(0, -1)}z`;
}

/**
 * Node names for a generated fleet: control-plane `cp-<i>`, then workers of mixed shapes — plain
 * `worker-<i>`, dotted `w<i>.rack<r>.dc1.example.com`, long names (64..253 characters), and twins that
 * differ only by '.' vs '-' (`edge.a<i>` / `edge-a<i>`).
 */
export function generateNodeNames(count: number, controlPlane: number, random: () => number): string[] {
  const names: string[] = [];
  for (let i = 0; i < Math.min(controlPlane, count); i++) names.push(`cp-${i}`);
  let i = 0;
  while (names.length < count) {
    const roll = random();
    if (roll < 0.06 && names.length + 2 <= count) {
      names.push(`edge.a${i}`, `edge-a${i}`);
    } else if (roll < 0.1) {
      names.push(longName(`node-${i}.long`, 64 + Math.floor(random() * 190), random));
    } else if (roll < 0.25) {
      names.push(`w${i}.rack${i % 16}.dc1.example.com`);
    } else {
      names.push(`worker-${i}`);
    }
    i++;
  }
  return names;
}

export interface BuiltFleet {
  nodes: KubeObject[];
  outcomes: Map<string, OutcomeProgram>;
  defaultOutcome: OutcomeProgram;
}

function hostnameLabel(name: string): string {
  const v = name.slice(0, 63).replace(/[^A-Za-z0-9]+$/, "");
  return v;
}

// Parts every generated node has in common are shared between node objects (stored objects are never
// mutated: writes copy first), which keeps a 100,000-node fleet small.
const CAPACITY = Object.freeze({ cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi" });
const ALLOCATABLE = Object.freeze({ cpu: "7800m", memory: "31Gi", pods: "110", "ephemeral-storage": "95Gi" });
const conditionCache = new Map<string, readonly object[]>();

function nodeConditions(ready: boolean, time: string): readonly object[] {
  const key = `${ready}|${time}`;
  let conds = conditionCache.get(key);
  if (conds) return conds;
  const c = (type: string, status: string, reason: string, message: string) =>
    Object.freeze({ type, status, lastHeartbeatTime: time, lastTransitionTime: time, reason, message });
  conds = Object.freeze([
    c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ready
      ? c("Ready", "True", "KubeletReady", "kubelet is posting ready status")
      : c("Ready", "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false"),
  ]);
  conditionCache.set(key, conds);
  return conds;
}

/** The Node object for a fleet entry; `time` stamps its conditions. */
export function nodeObject(n: FleetNode, random: () => number, index: number, time = ""): KubeObject {
  const arch = n.architecture ?? n.labels?.["kubernetes.io/arch"] ?? "amd64";
  const hostname = hostnameLabel(n.name);
  const labels: Record<string, string> = {
    "beta.kubernetes.io/arch": arch,
    "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": arch,
    "kubernetes.io/hostname": hostname,
    "kubernetes.io/os": "linux",
    ...(n.labels ?? {}),
  };
  const spec: Record<string, unknown> = {};
  if (n.taints && n.taints.length > 0) spec.taints = n.taints.map((t) => ({ ...t }));
  if (n.unschedulable) spec.unschedulable = true;
  const uuid = `${hex(random, 8)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 12)}`;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name, labels, ...(n.annotations ? { annotations: { ...n.annotations } } : {}) },
    spec,
    status: {
      capacity: CAPACITY,
      allocatable: ALLOCATABLE,
      conditions: nodeConditions(n.ready ?? true, time),
      addresses: [
        { type: "InternalIP", address: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}` },
        { type: "Hostname", address: hostname },
      ],
      nodeInfo: {
        machineID: n.machineID ?? hex(random, 32),
        systemUUID: uuid,
        bootID: uuid,
        kernelVersion: "6.8.0-60-generic",
        osImage: "Ubuntu 24.04.2 LTS",
        containerRuntimeVersion: n.containerRuntimeVersion ?? pick(random, RUNTIMES),
        kubeletVersion: "v1.35.0",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: arch,
      },
    },
  };
}

/** Picks `count` distinct indexes out of `candidates`, deterministically. */
function sample(candidates: number[], count: number, random: () => number): Set<number> {
  const pool = candidates.slice();
  const chosen = new Set<number>();
  for (let i = 0; i < Math.min(count, pool.length); i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
    chosen.add(pool[i]);
  }
  return chosen;
}

/** Builds the fleet: from `options.fleet` when given, else generated. */
export function buildFleet(options: FleetOptions, time = ""): BuiltFleet {
  const seed = options.seed ?? 1;
  const random = seededRandom(seed);
  if (options.fleet !== undefined) {
    const file =
      typeof options.fleet === "string"
        ? readFleetFile(options.fleet)
        : parseFleetFile(options.fleet, "fleet");
    const outcomes = new Map<string, OutcomeProgram>();
    const nodes = file.nodes.map((n, i) => {
      if (n.outcome) outcomes.set(n.name, n.outcome);
      return nodeObject(n, random, i, time);
    });
    return { nodes, outcomes, defaultOutcome: file.defaultOutcome ?? { kind: "succeed" } };
  }
  const count = options.nodes ?? 0;
  const controlPlane = Math.min(options.controlPlane ?? 0, count);
  const names = generateNodeNames(count, controlPlane, random);
  const workers = names.map((_, i) => i).filter((i) => i >= controlPlane);
  const tainted = sample(workers, options.tainted ?? 0, random);
  const failing = sample(
    names.map((_, i) => i),
    Math.round(count * (options.failRate ?? 0)),
    random,
  );
  const outcomes = new Map<string, OutcomeProgram>();
  const nodes = names.map((name, i) => {
    const isCp = i < controlPlane;
    const roll = random();
    let acc = 0;
    const arch = ARCHES.find((a) => (acc += a.weight) > roll)?.arch ?? "amd64";
    const taints: FleetNode["taints"] = [];
    if (isCp) taints.push({ key: CONTROL_PLANE_LABEL, effect: "NoSchedule" });
    if (tainted.has(i)) taints.push({ ...DEDICATED_TAINT });
    if (failing.has(i)) outcomes.set(name, { kind: "fail", failure: { message: GENERATED_FAILURE_MESSAGE } });
    return nodeObject(
      { name, architecture: arch, labels: { [isCp ? CONTROL_PLANE_LABEL : WORKER_LABEL]: "" }, taints },
      random,
      i,
      time,
    );
  });
  return { nodes, outcomes, defaultOutcome: { kind: "succeed" } };
}
