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
  .strict()
  .superRefine((fleet, ctx) => {
    const seen = new Map<string, number>();
    fleet.nodes.forEach((n, i) => {
      const first = seen.get(n.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["nodes", i, "name"],
          message: `duplicate node name "${n.name}" (first at nodes[${first}])`,
        });
      } else seen.set(n.name, i);
    });
  });

export class FleetFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FleetFileError";
  }
}

/** Parses and validates fleet file content; errors list every problem with its path. */
export function parseFleetFile(content: unknown, source = "fleet file"): FleetFile {
  const result = fleetFileSchema.safeParse(content);
  if (result.success) return result.data as FleetFile;
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
    return `  ${path ? path.replace(/^\./, "") : "(root)"}: ${issue.message}`;
  });
  throw new FleetFileError(`${source} is invalid:\n${lines.join("\n")}`);
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
  for (let i = 0; i < length; i++) s += Math.floor(random() * 16).toString(16);
  return s;
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

export function nodeObject(n: FleetNode, random: () => number, index: number): KubeObject {
  const arch = n.architecture ?? n.labels?.["kubernetes.io/arch"] ?? "amd64";
  const labels: Record<string, string> = {
    "beta.kubernetes.io/arch": arch,
    "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": arch,
    "kubernetes.io/hostname": hostnameLabel(n.name),
    "kubernetes.io/os": "linux",
    ...(n.labels ?? {}),
  };
  const spec: Record<string, unknown> = {};
  if (n.taints && n.taints.length > 0) spec.taints = n.taints.map((t) => ({ ...t }));
  if (n.unschedulable) spec.unschedulable = true;
  const now = new Date(0).toISOString();
  const ready = n.ready ?? true;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name, labels, ...(n.annotations ? { annotations: { ...n.annotations } } : {}) },
    spec,
    status: {
      capacity: { cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi" },
      allocatable: { cpu: "7800m", memory: "31Gi", pods: "110", "ephemeral-storage": "95Gi" },
      conditions: [
        {
          type: "MemoryPressure",
          status: "False",
          reason: "KubeletHasSufficientMemory",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
        {
          type: "DiskPressure",
          status: "False",
          reason: "KubeletHasNoDiskPressure",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
        {
          type: "PIDPressure",
          status: "False",
          reason: "KubeletHasSufficientPID",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
        ready
          ? {
              type: "Ready",
              status: "True",
              reason: "KubeletReady",
              message: "kubelet is posting ready status",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            }
          : {
              type: "Ready",
              status: "False",
              reason: "KubeletNotReady",
              message: "container runtime network not ready",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
      ],
      addresses: [
        {
          type: "InternalIP",
          address: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${(index & 255) + 0}`,
        },
        { type: "Hostname", address: hostnameLabel(n.name) },
      ],
      nodeInfo: {
        machineID: n.machineID ?? hex(random, 32),
        systemUUID: `${hex(random, 8)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 12)}`,
        bootID: `${hex(random, 8)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 12)}`,
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
export function buildFleet(options: FleetOptions): BuiltFleet {
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
      return nodeObject(n, random, i);
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
    );
  });
  return { nodes, outcomes, defaultOutcome: { kind: "succeed" } };
}
