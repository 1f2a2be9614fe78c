// The per-node results as the component outputs them (`nodeOutcomes`): small enough to be stored twice more in a
// checkpoint (the component's outputs, and the stack output a program exports) on fleets of 10,000 nodes, and
// readable without code by any language, YAML included (`nodes["worker-17"].outcome` and `.reason` are plain
// paths). Messages, long and often repeated across nodes, are a table the entries index. Job names, attempts and
// times stay in the Rollout's own state (rollout/compact.ts). Node built-ins only.
import type { NodeResult } from "../kube/jobStatus";

/** One node's entry in `NodeOutcomes.nodes`. */
export interface NodeOutcomeEntry {
  /** `succeeded`, `failed`, `skipped` or `unknown` (kube/jobStatus.ts NodeOutcome); a plain string on the wire. */
  outcome: string;
  /** Why it failed or was skipped (`BackoffLimitExceeded`, `Tainted`, `Timeout`, ...); absent on success. */
  reason?: string;
  /** Index into `NodeOutcomes.messages`: what the failed pod said. */
  message?: number;
}

export interface NodeOutcomes {
  /** Every node of the last run, by name. */
  nodes: { [node: string]: NodeOutcomeEntry };
  /** The distinct failure messages the entries index. */
  messages: string[];
}

/** One node as a consumer reads it back (`nodeOutcome`). */
export interface NodeOutcomeOf {
  node: string;
  outcome: string;
  reason?: string;
  message?: string;
}

export function encodeOutcomes(results: readonly NodeResult[]): NodeOutcomes {
  const out: NodeOutcomes = { nodes: {}, messages: [] };
  const index = new Map<string, number>();
  for (const r of results) {
    const entry: NodeOutcomeEntry = { outcome: r.outcome };
    if (r.reason !== undefined) entry.reason = r.reason;
    if (r.message !== undefined) {
      let i = index.get(r.message);
      if (i === undefined) {
        i = out.messages.length;
        out.messages.push(r.message);
        index.set(r.message, i);
      }
      entry.message = i;
    }
    out.nodes[r.node] = entry;
  }
  return out;
}

/** The outcome, reason and message of `node` in the last run; undefined when the run did not cover it. */
export function nodeOutcome(outcomes: NodeOutcomes, node: string): NodeOutcomeOf | undefined {
  // An own property only: a node may be named `constructor` (a valid DNS subdomain).
  if (!Object.prototype.hasOwnProperty.call(outcomes.nodes, node)) return undefined;
  const entry = outcomes.nodes[node];
  const found: NodeOutcomeOf = { node, outcome: entry.outcome };
  if (entry.reason !== undefined) found.reason = entry.reason;
  if (entry.message !== undefined) {
    const message = outcomes.messages[entry.message];
    if (message === undefined)
      throw new Error(
        `nodeOutcomes: node ${node} refers to message ${entry.message}, but there are ${outcomes.messages.length}`,
      );
    found.message = message;
  }
  return found;
}

/** Every node of the last run with its outcome, reason and message, in the order the run reported them. */
export function listNodeOutcomes(outcomes: NodeOutcomes): NodeOutcomeOf[] {
  return Object.keys(outcomes.nodes).map((node) => nodeOutcome(outcomes, node) as NodeOutcomeOf);
}
