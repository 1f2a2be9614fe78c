import assert from "node:assert/strict";
import { parse } from "yaml";
import { renderChart } from "../../chart/render";
import type { K8sObject } from "../../chart/k8s";
import { FIXTURE_CASES, FIXTURE_VERSIONS, type FixtureCase, type FixtureVersion } from "./fixtures/cases";
import { helmObjects, objectKey } from "./fixtures/objects";

// Ground truth: Helm 4's own `helm template` of the real chart (fixtures/render.ts regenerates the files from
// a chart folder). Every object the offline renderer produces — resources and the hook objects it
// re-implements — must equal Helm's after parsing, and Helm must render nothing the renderer lacks, except
// the objects listed in NOT_RENDERED.

/** Objects Helm renders that the offline renderer leaves out on purpose (chart/README.md). */
const NOT_RENDERED = new Set<string>([]);

/** The rb-cleanup Job's shell script is the project's own (same behaviour and environment, not the chart's text). */
const OWN_SCRIPT_JOBS = /-rb-cleanup(-|$)/;

/** Paths where two JSON values differ (at most `limit`), for a readable failure. */
export function differences(a: unknown, b: unknown, path = "", out: string[] = [], limit = 40): string[] {
  if (out.length >= limit) return out;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(`${path}: length ${a.length} (offline) vs ${b.length} (helm)`);
    for (let i = 0; i < Math.min(a.length, b.length); i++)
      differences(a[i], b[i], `${path}[${i}]`, out, limit);
    return out;
  }
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(k in a))
        out.push(`${path}.${k}: missing offline, helm has ${JSON.stringify(b[k]).slice(0, 300)}`);
      else if (!(k in b))
        out.push(`${path}.${k}: offline has ${JSON.stringify(a[k]).slice(0, 300)}, helm has none`);
      else differences(a[k], b[k], `${path}.${k}`, out, limit);
    }
    return out;
  }
  if (!Object.is(a, b))
    out.push(
      `${path}: ${JSON.stringify(a)?.slice(0, 300)} (offline) vs ${JSON.stringify(b)?.slice(0, 300)} (helm)`,
    );
  return out;
}

type PodTemplated = { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } };

/**
 * Helm hashes its own rendered bytes into `checksum/*` pod annotations; the renderer hashes its own YAML. Here both
 * must be sha256 hex; that the renderer's value follows the hashed content is tested separately (checksums.test.ts).
 */
function blankChecksums(object: PodTemplated): void {
  const annotations = object.spec?.template?.metadata?.annotations ?? {};
  for (const key of Object.keys(annotations)) {
    if (key.startsWith("checksum/") && /^[0-9a-f]{64}$/.test(annotations[key])) annotations[key] = "<sha256>";
  }
}

/** A comparable form: YAML text held in job-templates ConfigMaps parsed; the project's own script blanked. */
export function comparable(o: K8sObject): unknown {
  // A YAML key with no value (`metadata:`) parses as null, which the API server reads as absent.
  const copy = JSON.parse(JSON.stringify(o), (_k, v: unknown) =>
    v === null ? undefined : v,
  ) as K8sObject & {
    data?: Record<string, string>;
    spec?: { template?: { spec?: { containers?: { command?: string[] }[] } } };
  };
  if (copy.kind === "ConfigMap" && /-job-templates$/.test(copy.metadata.name ?? "") && copy.data) {
    for (const key of Object.keys(copy.data)) {
      const template = parse(copy.data[key]) as PodTemplated;
      blankChecksums(template);
      (copy.data as Record<string, unknown>)[key] = template;
    }
  }
  blankChecksums(copy as PodTemplated);
  if (copy.kind === "Job" && OWN_SCRIPT_JOBS.test(copy.metadata.name ?? "")) {
    for (const c of copy.spec?.template?.spec?.containers ?? []) {
      if (c.command?.[0] === "bash" && c.command[1] === "-c") c.command[2] = "<script>";
    }
  }
  return copy;
}

export function offlineObjects(version: FixtureVersion, c: FixtureCase): K8sObject[] {
  const rendered = renderChart(c.values, c.release, { parseYaml: parse, version });
  return [
    ...rendered.resources,
    ...Object.values(rendered.hooks).flatMap((h) => (h === undefined ? [] : Array.isArray(h) ? h : [h])),
  ];
}

/** The versions the offline renderer reproduces; fixtures of others wait for their renderer. */
const RENDERED_VERSIONS: readonly FixtureVersion[] = FIXTURE_VERSIONS;

for (const version of RENDERED_VERSIONS) {
  describe(`chart: offline render equals Helm's render of chart ${version} (fixtures)`, () => {
    for (const c of FIXTURE_CASES[version]) {
      it(`${c.name}: the same objects, field for field`, () => {
        const helm = new Map(helmObjects(version, c.name).map((o) => [objectKey(o), o]));
        const offline = new Map(offlineObjects(version, c).map((o) => [objectKey(o), o]));
        const problems: string[] = [];
        for (const [key, ours] of offline) {
          const theirs = helm.get(key);
          if (!theirs) problems.push(`${key}: rendered offline, not by Helm`);
          else for (const d of differences(comparable(ours), comparable(theirs))) problems.push(`${key}${d}`);
        }
        for (const key of helm.keys()) {
          if (!offline.has(key) && !NOT_RENDERED.has(key.split("/")[0]))
            problems.push(`${key}: rendered by Helm only`);
        }
        assert.deepEqual(problems, []);
      });
    }
  });
}
