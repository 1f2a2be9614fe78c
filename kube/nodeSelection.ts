// Which nodes a dispatcher run covers, as data, and the one rule that turns listed nodes into the nodes it works
// on: explicit names win; else the union (OR) of label selectors, each evaluated by the API server; neither means
// every node; then each node is admitted as a DaemonSet pod with the given tolerations would be (a node whose
// NoSchedule/NoExecute taint is not tolerated is skipped). The dispatcher, the rollout's waiter and `npm start`
// all admit through `admitSelected`. The selection becomes command-line flags in one place (`selectionArgs`),
// where the chart writes the dispatcher's command; the dispatcher's own parser reads them back.
import { firstUntoleratedTaint, type Taint, type Toleration } from "./tolerations";

export interface NodeSelection {
  /** Explicit node names (`--nodes=a,b`); when non-empty, no selector is used. */
  nodes?: string[];
  /** Label selectors (`--node-selector=`, repeatable), OR-ed; none (and no names) means every node. */
  selectors?: string[];
}

const NODES_FLAG = "--nodes=";
const SELECTOR_FLAG = "--node-selector=";

/** Names deduplicated and sorted; selectors only when no name is given; empty parts left out. */
export function normalizeSelection(selection: NodeSelection): NodeSelection {
  const names = (selection.nodes ?? []).map((n) => n.trim()).filter(Boolean);
  if (names.length > 0) return { nodes: [...new Set(names)].sort() };
  return selection.selectors?.length ? { selectors: [...selection.selectors] } : {};
}

/** The dispatcher's command-line arguments for a selection, in the order the chart writes them. */
export function selectionArgs(selection: NodeSelection): string[] {
  if (selection.nodes?.length) return [`${NODES_FLAG}${selection.nodes.join(",")}`];
  return (selection.selectors ?? []).map((s) => `${SELECTOR_FLAG}${s}`);
}

/** Whether a command-line argument is one of the selection's. */
function isSelectionArg(arg: string): boolean {
  return arg.startsWith(NODES_FLAG) || arg.startsWith(SELECTOR_FLAG);
}

/** A dispatcher command line with its selection replaced (the other arguments kept, the selection last). */
export function withSelectionArgs(args: readonly string[], selection: NodeSelection): string[] {
  return [...args.filter((a) => !isSelectionArg(a)), ...selectionArgs(selection)];
}

/**
 * The node LISTs that resolve a selection: one per label selector (their union is the selection), or one of every
 * node (no selector, or explicit names, which are then picked from it). `undefined` = no label selector.
 */
export function selectionQueries(selection: NodeSelection): (string | undefined)[] {
  if (selection.nodes?.length || !selection.selectors?.length) return [undefined];
  return [...selection.selectors];
}

/** The Node fields admission reads. */
export interface SelectableNode {
  metadata?: { name?: string; deletionTimestamp?: string };
  spec?: { taints?: Taint[] };
}

export interface AdmittedSelection<N> {
  /** Every selected node, deduplicated by name (first occurrence kept) and sorted by name (byte order). */
  matched: N[];
  admitted: N[];
  /** Selected nodes with a taint the tolerations do not cover, and that taint. */
  skipped: { node: N; name: string; taint: Taint }[];
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The nodes a selection covers among `listed` (the answers to `selectionQueries`), admitted by taints.
 * `ignoreTaints` admits every selected node; `skipDeleting` leaves out nodes that are being deleted.
 */
export function admitSelected<N extends SelectableNode>(
  listed: readonly (readonly N[])[],
  selection: NodeSelection,
  tolerations: readonly Toleration[],
  options: { ignoreTaints?: boolean; skipDeleting?: boolean } = {},
): AdmittedSelection<N> {
  const wanted = selection.nodes?.length ? new Set(selection.nodes) : undefined;
  const byName = new Map<string, N>();
  for (const node of listed.flat()) {
    const name = node.metadata?.name;
    if (!name || byName.has(name) || (wanted && !wanted.has(name))) continue;
    if (options.skipDeleting && node.metadata?.deletionTimestamp) continue;
    byName.set(name, node);
  }
  const names = [...byName.keys()].sort(compareNames);
  const result: AdmittedSelection<N> = { matched: [], admitted: [], skipped: [] };
  for (const name of names) {
    const node = byName.get(name) as N;
    result.matched.push(node);
    const taint = options.ignoreTaints ? undefined : firstUntoleratedTaint(node.spec?.taints, tolerations);
    if (taint) result.skipped.push({ node, name, taint });
    else result.admitted.push(node);
  }
  return result;
}
