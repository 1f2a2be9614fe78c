// A compact, lossless encoding of nodeResults for the Pulumi state (target: well under 200 bytes per node on
// fleets of thousands): Job names that follow the dispatcher's naming rule are implied, times are second offsets
// from one base, reasons and messages are interned (failures tend to repeat across nodes). Node built-ins only.
import type { NodeOutcome, NodeResult } from "../kube/jobStatus";
import { jobName } from "../dispatcher/naming";

// Appended only: the index is what the state stores.
const OUTCOMES: NodeOutcome[] = ["succeeded", "failed", "skipped", "unknown"];

/** Kubernetes timestamps are whole seconds (`2026-11-25T14:00:00Z`); other precisions are kept as text. */
function toSeconds(t: string | undefined): number | string | undefined {
  if (t === undefined) return undefined;
  const ms = Date.parse(t);
  if (!Number.isFinite(ms) || ms % 1000 !== 0 || fromSeconds(ms / 1000) !== t) return t;
  return ms / 1000;
}

function fromSeconds(s: number): string {
  return new Date(s * 1000).toISOString().replace(".000Z", "Z");
}

interface Encoded {
  v: 1;
  /** Owner value the Job names derive from. */
  o: string;
  /** Base time (epoch seconds). */
  b: number;
  r: string[];
  m: string[];
  /** [node, outcome, attempts, job (0 = derived, null = none), started, finished, reason, message] — trailing nulls cut. */
  n: (string | number | null)[][];
}

function intern(table: string[], index: Map<string, number>, value: string | undefined): number | null {
  if (value === undefined) return null;
  let i = index.get(value);
  if (i === undefined) {
    i = table.length;
    table.push(value);
    index.set(value, i);
  }
  return i;
}

export function encodeResults(results: readonly NodeResult[], ownerValue = ""): string {
  const times = results
    .flatMap((r) => [toSeconds(r.startedAt), toSeconds(r.finishedAt)])
    .filter((t): t is number => typeof t === "number");
  // A loop, not Math.min(...times): spreading 200,000 arguments overflows the call stack on large fleets.
  const base = times.length ? times.reduce((a, b) => (b < a ? b : a)) : 0;
  const enc: Encoded = { v: 1, o: ownerValue, b: base, r: [], m: [], n: [] };
  const ri = new Map<string, number>();
  const mi = new Map<string, number>();
  const time = (t: string | undefined) => {
    const s = toSeconds(t);
    return s === undefined ? null : typeof s === "number" ? s - base : s;
  };
  for (const r of results) {
    const job = r.job === undefined ? null : ownerValue && r.job === jobName(ownerValue, r.node) ? 0 : r.job;
    const row: (string | number | null)[] = [
      r.node,
      OUTCOMES.indexOf(r.outcome),
      r.attempts,
      job,
      time(r.startedAt),
      time(r.finishedAt),
      intern(enc.r, ri, r.reason),
      intern(enc.m, mi, r.message),
    ];
    while (row.length > 3 && row[row.length - 1] === null) row.pop();
    enc.n.push(row);
  }
  return JSON.stringify(enc);
}

export function decodeResults(text: string | undefined): NodeResult[] {
  if (!text) return [];
  const enc = JSON.parse(text) as Encoded;
  if (enc.v !== 1) throw new Error(`rollout results: unknown encoding version ${String(enc.v)}`);
  const time = (v: string | number | null | undefined) =>
    v === null || v === undefined ? undefined : typeof v === "number" ? fromSeconds(enc.b + v) : v;
  return enc.n.map((row) => {
    const [node, outcome, attempts, job, started, finished, reason, message] = row;
    const r: NodeResult = {
      node: String(node),
      outcome: OUTCOMES[Number(outcome)],
      attempts: Number(attempts),
    };
    if (job === 0) r.job = jobName(enc.o, r.node);
    else if (typeof job === "string") r.job = job;
    const s = time(started);
    if (s !== undefined) r.startedAt = s;
    const f = time(finished);
    if (f !== undefined) r.finishedAt = f;
    if (typeof reason === "number") r.reason = enc.r[reason];
    if (typeof message === "number") r.message = enc.m[message];
    return r;
  });
}
