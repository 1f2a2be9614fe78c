// The multi-install suffix rule checked against the objects themselves: a suffix is accepted exactly when
// every object the chart renders with it (chart, an independent renderer of chart 4.0.0), plus the
// dispatcher hook Jobs the project creates, has names, labels and RuntimeClass handlers Kubernetes accepts
// (kube/validation.ts).
import assert from "node:assert/strict";
import fc from "fast-check";
import { renderChart } from "../../chart";
import { checkArgs } from "../../index";
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
} from "../../kube/validation";

interface K8sLike {
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  handler?: string;
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    template?: { metadata?: { labels?: Record<string, string> } };
  };
}

const RBAC_KINDS = new Set(["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);

/** What the API server would refuse in these objects (names, labels, RuntimeClass handlers). */
function apiServerProblems(objects: readonly K8sLike[]): string[] {
  const problems: string[] = [];
  const labels = (where: string, map: Record<string, string> | undefined) => {
    for (const [k, v] of Object.entries(map ?? {})) {
      for (const e of labelKeyErrors(k)) problems.push(`${where} label key ${k}: ${e}`);
      for (const e of labelValueErrors(String(v))) problems.push(`${where} label ${k}=${v}: ${e}`);
    }
  };
  for (const o of objects) {
    const name = o.metadata?.name ?? "";
    const where = `${o.kind}/${name}`;
    // RBAC names are path segments (lenient); every other kind here needs a DNS-1123 subdomain.
    if (!RBAC_KINDS.has(o.kind ?? ""))
      for (const e of dns1123SubdomainErrors(name)) problems.push(`${where}: ${e}`);
    // A Job's name becomes its pods' job-name label.
    if (o.kind === "Job")
      for (const e of labelValueErrors(name)) problems.push(`${where} job-name label: ${e}`);
    if (o.kind === "RuntimeClass")
      for (const e of dns1123LabelErrors(o.handler ?? "")) problems.push(`${where} handler: ${e}`);
    labels(where, o.metadata?.labels);
    labels(`${where} selector`, o.spec?.selector?.matchLabels);
    labels(`${where} pod template`, o.spec?.template?.metadata?.labels);
  }
  return problems;
}

const SHIMS = ["qemu", "fc", "clh-azure-runtime-rs", "qemu-nvidia-gpu-snp-runtime-rs", "qemu-coco-dev"];

// Lowercase DNS labels of every length 1..70 (uniformly, so the limits around 27, 51 and 63 are hit), and
// sometimes a character Kubernetes refuses somewhere.
const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789".split("");
const suffix = fc
  .tuple(
    fc.integer({ min: 1, max: 70 }),
    fc.array(fc.constantFrom(...ALNUM, "-"), { minLength: 70, maxLength: 70 }),
    fc.option(fc.tuple(fc.constantFrom("A", "_", ".", "-"), fc.nat()), { freq: 5 }),
  )
  .map(([length, middle, bad]) => {
    const chars = middle.slice(0, length);
    chars[0] = ALNUM[length % ALNUM.length];
    chars[length - 1] = ALNUM[(length * 7) % ALNUM.length];
    if (bad) chars[bad[1] % length] = bad[0];
    return chars.join("");
  });

describe("components: multi-install suffix rule vs the rendered chart objects (property)", () => {
  it("accepted exactly when every rendered name, label and handler is valid", () => {
    fc.assert(
      fc.property(
        suffix,
        fc.constantFrom("daemonset", "job"),
        fc.subarray(SHIMS, { minLength: 1 }),
        (s, mode, enabled) => {
          const args = {
            deploymentMode: mode,
            env: { multiInstallSuffix: s },
            disableAllShims: true,
            shims: Object.fromEntries(enabled.map((name) => [name, { enabled: true }])),
            defaultShim: { amd64: enabled[0] },
          };
          const errors = checkArgs(args, "kata").errors;
          assert.ok(
            errors.every((e) => e.path === "env.multiInstallSuffix"),
            JSON.stringify(errors),
          );
          const accepted = errors.length === 0;
          const rendered = renderChart(
            {
              deploymentMode: mode,
              env: args.env,
              shims: { disableAll: true, ...args.shims },
              defaultShim: args.defaultShim,
            },
            { name: "kata", namespace: "kube-system" },
          );
          const objects = [
            ...rendered.resources,
            rendered.hooks.installDispatcher,
            rendered.hooks.cleanupDispatcher,
          ].filter((o): o is NonNullable<typeof o> => o !== undefined) as K8sLike[];
          assert.ok(objects.some((o) => o.kind === "RuntimeClass"));
          const problems = apiServerProblems(objects);
          assert.equal(
            accepted,
            problems.length === 0,
            `suffix ${JSON.stringify(s)} (${s.length}) ${mode}: ${accepted ? "accepted" : errors[0].message} vs ${problems.slice(0, 3).join("; ")}`,
          );
        },
      ),
      {
        numRuns: 300,
        // The boundaries, always: handler limits (27/28 with the longest shim, 53-56 with qemu and fc) and the
        // DaemonSet pod label (51/52), which only exists in daemonset mode.
        examples: [27, 28, 51, 52, 53, 54, 55, 56].flatMap((n) =>
          (["daemonset", "job"] as const).flatMap((mode) =>
            [["qemu"], ["fc"], ["qemu-nvidia-gpu-snp-runtime-rs"]].map(
              (shims) => [`s${"0".repeat(n - 2)}s`, mode, shims] as [string, string, string[]],
            ),
          ),
        ),
      },
    );
  });
});
