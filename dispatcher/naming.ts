// Per-node Job naming and the owner label value, exactly as the upstream HEAD dispatcher computes them
// (dispatcher-reference.md §2.5), so Jobs made by either dispatcher carry the same names and labels.
// Node built-ins only: the rollout's serialized dynamic provider imports this file.
import { createHash } from "node:crypto";

export {
  JOB_OWNER_LABEL as OWNER_LABEL,
  JOB_NODE_LABEL as NODE_LABEL,
  JOB_NODE_NAME_ANNOTATION as NODE_NAME_ANNOTATION,
} from "../kube/jobStatus";

/** Longest Kubernetes label value / DNS-1123 label. */
const MAX_NAME = 63;
/** Characters kept before `-<24 hex>` when a name must carry a hash (63 - 1 - 24). */
const HASHED_KEEP = MAX_NAME - 25;

/** Lowercase, map every code point outside `[a-z0-9-]` to `-`, trim `-` at both ends (no collapsing, no truncation). */
export function sanitizeNode(value: string): string {
  let out = "";
  // Iterating a string yields code points, so one non-ASCII character becomes exactly one dash.
  for (const ch of value) {
    const lower = ch.length === 1 && ch >= "A" && ch <= "Z" ? ch.toLowerCase() : ch;
    out += /^[a-z0-9-]$/.test(lower) ? lower : "-";
  }
  return out.replace(/^-+/, "").replace(/-+$/, "");
}

/** First 12 bytes of SHA-256 over the UTF-8 bytes, as 24 lowercase hex characters. */
export function shortHash(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex").slice(0, 24);
}

function withHash(sanitized: string, hash: string, fallback: string): string {
  const kept = sanitized.slice(0, HASHED_KEEP).replace(/-+$/, "");
  return `${kept || fallback}-${hash}`;
}

/**
 * A valid label value that cannot merge two different inputs: verbatim when sanitizing changed nothing and it
 * fits, otherwise a truncated readable part plus a hash of the raw value (`kata.foo` ≠ `kata-foo`).
 */
export function sanitizeLabelValue(value: string): string {
  const sanitized = sanitizeNode(value);
  if (sanitized === value && sanitized.length <= MAX_NAME) return sanitized;
  return withHash(sanitized, shortHash(value), "dispatcher");
}

/** The owner label value (and Job-name prefix) for a raw `--name-prefix`. */
export function ownerValue(namePrefix: string): string {
  return sanitizeLabelValue(namePrefix);
}

/**
 * The per-node Job name for an owner value (already sanitized) and a raw node name: `<owner>-<node>` when the node
 * name needed no sanitizing and the result fits in 63 characters, otherwise hashed over `owner\0node`.
 */
export function jobName(owner: string, node: string): string {
  const sanitized = sanitizeNode(node);
  const base = `${owner}-${sanitized}`;
  if (sanitized === node && base.length <= MAX_NAME) return base;
  return withHash(base, shortHash(`${owner}\0${node}`), "");
}

/** The value of the node label on a per-node Job. */
export function nodeLabelValue(node: string): string {
  return sanitizeLabelValue(node);
}
