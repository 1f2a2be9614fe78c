// The install plan a preview shows (issue #13 item 5): read at program time, in preview and up alike, from the
// records the bundled dispatcher leaves on the nodes, so the rollout's inputs say which nodes the next run installs
// and why. Read-only, metadata only and paged: a fleet whose nodes all carry the payload costs one metadata LIST per
// selector; only nodes that need an install are read in full (their taints decide whether a Job can run there).
// Program side (the component imports it); the provider reads the result from its inputs.
import { installReason, releaseJobs, selectNodes, type InstallReason, type NodeLike } from "./aggregate";
import { liveConnection } from "./ambient";
import { describeConnection } from "./connection";
import { KubeClient } from "./kubeClient";
import type { InstallPlan, RolloutInputs } from "./types";
import { listSelection, NODES_PATH } from "./waiter";

/** Names a plan shows per reason; the rest is counted (the program's log lists up to LOGGED_NAMES). */
export const PLAN_NAMES_SHOWN = 50;
export const LOGGED_NAMES = 1000;

/** Up to this many nodes needing an install are read one by one; more are read with one full LIST per selector. */
const SINGLE_READS_UP_TO = 100;

/** The plan with every name, for the program's log; `plan` is what goes into the inputs. */
export interface InstallPlanReading {
  plan: InstallPlan;
  nodes: Record<InstallReason | "blocked", string[]>;
}

/** `a, b, c` or `a, b, … and 12 more`. */
export function nameList(names: readonly string[], shown: number): string {
  if (names.length <= shown) return names.join(", ");
  return `${names.slice(0, shown).join(", ")} and ${names.length - shown} more`;
}

/** The inputs whose nodes' records say what the next run installs: job mode, bundled dispatcher, drift healing on. */
export function plansInstalls(inputs: RolloutInputs): boolean {
  return inputs.mode === "job" && inputs.healDrift && inputs.install?.payload !== undefined;
}

/** The selected nodes (as listed, metadata is enough) whose records say the next run installs them, and why. */
export function installReasons(
  inputs: RolloutInputs,
  listed: readonly (readonly NodeLike[])[],
): { selected: number; reasons: Map<string, InstallReason> } {
  const stage = inputs.install;
  const release = releaseJobs(inputs);
  if (!stage?.payload || !release)
    throw new Error("internal: an install plan needs the bundled install stage");
  const byName = new Map<string, NodeLike>();
  for (const n of listed.flat()) if (n.metadata?.name) byName.set(n.metadata.name, n);
  const selected = selectNodes(listed, stage.selection);
  const reasons = new Map<string, InstallReason>();
  for (const s of selected) {
    const reason = installReason(byName.get(s.name) ?? {}, stage.payload, release);
    if (reason) reasons.set(s.name, reason);
  }
  return { selected: selected.length, reasons };
}

/**
 * The plan (pure) from the selected nodes as listed and the full objects of those that need an install (for their
 * taints; one missing there was deleted meanwhile and is not counted).
 */
export function installPlanOf(
  inputs: RolloutInputs,
  listed: readonly (readonly NodeLike[])[],
  fullNodes: readonly NodeLike[],
): InstallPlanReading {
  const { selected, reasons } = installReasons(inputs, listed);
  const tolerations = inputs.install?.tolerations ?? [];
  const candidates = fullNodes.filter((n) => reasons.has(n.metadata?.name ?? ""));
  const admitted = selectNodes([candidates], {}, tolerations);
  const nodes: InstallPlanReading["nodes"] = { new: [], changed: [], failed: [], blocked: [] };
  for (const n of admitted) {
    if (n.blockedBy) nodes.blocked.push(n.name);
    else nodes[reasons.get(n.name) as InstallReason].push(n.name);
  }
  for (const list of Object.values(nodes)) list.sort();
  const install = nodes.new.length + nodes.changed.length + nodes.failed.length;
  const plan: InstallPlan = { selected, install };
  for (const key of ["new", "changed", "failed", "blocked"] as const)
    if (nodes[key].length) plan[key] = nameList(nodes[key], PLAN_NAMES_SHOWN);
  return { plan, nodes };
}

/** Full Node objects of `names`: one GET each for a few, else the selection listed in full. */
async function readFullNodes(
  client: KubeClient,
  inputs: RolloutInputs,
  names: readonly string[],
): Promise<NodeLike[]> {
  if (names.length === 0) return [];
  if (names.length > SINGLE_READS_UP_TO)
    return (await listSelection(client, inputs.install!)).flat() as NodeLike[];
  const out: NodeLike[] = [];
  for (let i = 0; i < names.length; i += 8) {
    const batch = await Promise.all(
      names
        .slice(i, i + 8)
        .map((n) => client.getOptional<NodeLike>(`${NODES_PATH}/${encodeURIComponent(n)}`, `node ${n}`)),
    );
    for (const n of batch) if (n) out.push(n);
  }
  return out;
}

/**
 * Reads the plan from the cluster; when the nodes cannot be read, a plan that says why (never an empty plan, which
 * would read as "nothing to do"). Undefined when these inputs plan no installs (plansInstalls).
 */
export async function readInstallPlan(inputs: RolloutInputs): Promise<InstallPlanReading | undefined> {
  if (!plansInstalls(inputs)) return undefined;
  let client: KubeClient | undefined;
  try {
    client = new KubeClient(liveConnection(inputs.connection), { maxAttempts: 2, requestTimeoutMs: 15_000 });
    const listed = await listSelection(client, inputs.install!, true);
    const candidates = [...installReasons(inputs, listed).reasons.keys()];
    return installPlanOf(inputs, listed, await readFullNodes(client, inputs, candidates));
  } catch (err) {
    const where = describeConnection(inputs.connection);
    return {
      plan: { unreadable: `cannot read the nodes at ${where}: ${(err as Error).message}` },
      nodes: { new: [], changed: [], failed: [], blocked: [] },
    };
  } finally {
    client?.close();
  }
}

/** One line for the program's log: what the next run installs, and why, naming up to `namesShown` nodes per reason. */
export function describeInstallPlan(
  label: string,
  reading: InstallPlanReading,
  namesShown = LOGGED_NAMES,
): string {
  const { plan, nodes } = reading;
  if (plan.unreadable)
    return `${label}: which nodes the next run installs is unknown (${plan.unreadable}); the rollout decides when it runs`;
  if (!plan.install)
    return `${label}: every one of the ${plan.selected} selected node(s) carries this install; the next run installs none`;
  const parts = (
    [
      ["new", "new"],
      ["changed", "another payload"],
      ["failed", "failed before"],
    ] as const
  )
    .filter(([key]) => nodes[key].length)
    .map(([key, what]) => `${what} (${nodes[key].length}): ${nameList(nodes[key], namesShown)}`);
  const blocked = nodes.blocked.length
    ? `; left out for taints (${nodes.blocked.length}): ${nameList(nodes.blocked, namesShown)}`
    : "";
  return `${label}: the next run installs ${plan.install} of ${plan.selected} selected node(s): ${parts.join("; ")}${blocked}`;
}

/**
 * The inputs with the plan read now (what the component registers the rollout with), and the line the program logs:
 * a warning when the nodes could not be read. Inputs without a plan (plansInstalls) are returned as they are.
 */
export async function withInstallPlan(
  inputs: RolloutInputs,
  label: string,
  namesShown = LOGGED_NAMES,
): Promise<{ inputs: RolloutInputs; report?: { line: string; warning: boolean } }> {
  const reading = await readInstallPlan(inputs);
  if (!reading) return { inputs };
  return {
    inputs: { ...inputs, plan: reading.plan },
    report: {
      line: describeInstallPlan(label, reading, namesShown),
      warning: reading.plan.unreadable !== undefined,
    },
  };
}
