import assert from "node:assert/strict";
import fc from "fast-check";
import { renderChart } from "../../chart/render";
import type { DaemonSet, RuntimeClass } from "../../chart/k8s";

// The rules of kata-deploy-chart.md §3.1 and §1.10-§1.11, checked over random shim configurations:
// SHIMS_<ARCH> lists exactly the enabled shims that support the arch, byte-sorted and space-joined;
// DEFAULT_SHIM_<ARCH> is there only when the configured default is enabled and supports the arch;
// RuntimeClasses exist for enabled shims of the overhead table whatever their arches.
const release = { name: "r", namespace: "ns" };
const ARCH_ENV: Record<string, string> = {
  amd64: "X86_64",
  arm64: "AARCH64",
  s390x: "S390X",
  ppc64le: "PPC64LE",
};
const NAMES = ["qemu", "clh", "fc", "qemu-se", "my-shim", "Zed", "a-b"];

const shimArb = fc.record({
  enabled: fc.constantFrom(true, false, null),
  supportedArches: fc.subarray(["amd64", "arm64", "s390x", "ppc64le"]),
});

describe("chart/render: shim rules (property)", () => {
  it("SHIMS_*, DEFAULT_SHIM_* and RuntimeClasses follow the chart's rules", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom(...NAMES), shimArb),
        fc.boolean(),
        fc.constantFrom(...NAMES),
        (shims, disableAll, defaultShim) => {
          // The drawn shims merge over the default set (Helm coalescing), so both are in play.
          const values = {
            shims: { disableAll, ...shims },
            defaultShim: { amd64: defaultShim, arm64: defaultShim, s390x: defaultShim, ppc64le: defaultShim },
          };
          const r = renderChart(values, release);
          const merged = r.values.shims ?? {};
          const isOn = (name: string) => {
            const e = (merged[name] as { enabled?: boolean | null }).enabled;
            return e === true || ((e === null || e === undefined) && !disableAll);
          };
          const allNames = Object.keys(merged).filter((n) => n !== "disableAll");
          const ds = r.resources.find((o): o is DaemonSet => o.kind === "DaemonSet");
          const env = new Map((ds?.spec.template.spec.containers[0].env ?? []).map((e) => [e.name, e.value]));
          for (const [arch, suffix] of Object.entries(ARCH_ENV)) {
            const expected = allNames
              .filter(
                (n) =>
                  isOn(n) &&
                  ((merged[n] as { supportedArches?: string[] }).supportedArches ?? []).includes(arch),
              )
              .sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
            assert.equal(env.get(`SHIMS_${suffix}`), expected.length ? expected.join(" ") : undefined);
            assert.equal(
              env.get(`DEFAULT_SHIM_${suffix}`),
              expected.includes(defaultShim) ? defaultShim : undefined,
            );
          }
          const rcNames = r.resources
            .filter((o): o is RuntimeClass => o.kind === "RuntimeClass")
            .map((o) => o.metadata.name);
          // Chart 4.0.0's overhead table, by hand: the shims that get a RuntimeClass when enabled.
          const inTable = new Set([
            "clh",
            "clh-azure",
            "clh-runtime-rs",
            "clh-azure-runtime-rs",
            "dragonball",
            "fc",
            "stratovirt",
            "qemu",
            "qemu-runtime-rs",
            "qemu-coco-dev",
            "qemu-coco-dev-runtime-rs",
            "qemu-nvidia-cpu",
            "qemu-nvidia-cpu-runtime-rs",
            "qemu-se",
            "qemu-se-runtime-rs",
            "qemu-snp",
            "qemu-snp-runtime-rs",
            "qemu-tdx",
            "qemu-tdx-runtime-rs",
            "qemu-cca",
            "qemu-nvidia-gpu",
            "qemu-nvidia-gpu-runtime-rs",
            "qemu-nvidia-gpu-snp",
            "qemu-nvidia-gpu-snp-runtime-rs",
            "qemu-nvidia-gpu-tdx",
            "qemu-nvidia-gpu-tdx-runtime-rs",
            "remote",
          ]);
          assert.deepEqual(
            rcNames,
            allNames
              .filter((n) => isOn(n) && inTable.has(n))
              .sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1))
              .map((n) => `kata-${n}`),
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("chart/render: sprig merge quirks reproduced", () => {
  it("an empty per-shim overhead value keeps the built-in one (mergeOverwrite skips empty values)", () => {
    const rc = renderChart(
      {
        shims: {
          disableAll: true,
          qemu: { enabled: true, runtimeClass: { overhead: { memory: "", cpu: "2" } } },
        },
      },
      release,
    ).resources.find((o): o is RuntimeClass => o.kind === "RuntimeClass");
    assert.deepEqual(rc?.overhead, { podFixed: { memory: "320Mi", cpu: "2" } });
  });

  it("health.*.enabled: false does not switch a probe off (sprig merge fills empty values from the built-ins)", () => {
    const ds = renderChart(
      { health: { port: 9000, startupProbe: { enabled: false, periodSeconds: 5 } } },
      release,
    ).resources.find((o): o is DaemonSet => o.kind === "DaemonSet");
    const c = ds?.spec.template.spec.containers[0];
    assert.deepEqual(c?.startupProbe, {
      httpGet: { path: "/readyz", port: 9000 },
      initialDelaySeconds: 1,
      periodSeconds: 5,
      failureThreshold: 60,
      timeoutSeconds: 3,
    });
    assert.deepEqual(c?.env?.at(-1), { name: "HEALTH_PORT", value: "9000" });
  });
});
