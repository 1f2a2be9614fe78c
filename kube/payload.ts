// What a per-node install puts on a node, as one digest: the pod template of the per-node Job (images, commands,
// environment, volumes, the chart's labels). Job-level settings (ttlSecondsAfterFinished, backoffLimit,
// activeDeadlineSeconds) and the dispatcher's own pacing and code are not part of it: changing them installs nothing
// new on a node (issue #13, "install only what needs installing"). The dispatcher records the digest on each node it
// installs; a later run skips nodes whose successful record carries the same digest.
import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level, so equal values always give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/**
 * `p1:` and the first 32 hex digits of the sha256 of the Job template's `spec.template` in canonical JSON (128 bits:
 * an annotation value on every node, short enough to read). The prefix lets a future rule be told apart.
 */
export function payloadDigest(jobTemplate: { spec?: { template?: unknown } }): string {
  const text = canonicalJson(jobTemplate.spec?.template ?? null);
  return `p1:${createHash("sha256").update(text, "utf8").digest("hex").slice(0, 32)}`;
}
