import assert from "node:assert/strict";
import { chartNames, runtimeClassName, t63 } from "../../chart/names";

// Expected values are the chart's rules applied by hand (kata-deploy-chart.md §2.4, design.md §3).
describe("chart/names", () => {
  it("t63 cuts at 63 characters and trims every trailing dash", () => {
    assert.equal(t63("a".repeat(70)), "a".repeat(63));
    assert.equal(t63(`${"a".repeat(61)}--b`), "a".repeat(61));
    assert.equal(t63("short-"), "short");
  });

  it("names without a multi-install suffix", () => {
    const n = chartNames();
    assert.equal(n.base, "kata-deploy");
    assert.equal(n.jobTemplatesConfigMap, "kata-deploy-job-templates");
    assert.equal(n.dispatcherServiceAccount, "kata-deploy-dispatcher-sa");
    assert.equal(n.dispatcherNodeClusterRole, "kata-deploy-dispatcher-noderole");
    assert.equal(n.dispatcherRole, "kata-deploy-dispatcher-role");
    assert.equal(n.installDispatcherJob, "kata-deploy-install-dispatcher");
    assert.equal(n.cleanupDispatcherJob, "kata-deploy-cleanup-dispatcher");
    assert.equal(n.installNamePrefix, "kata-deploy-install");
    assert.equal(n.cleanupNamePrefix, "kata-deploy-cleanup");
    assert.equal(n.serviceAccount, "kata-deploy-sa");
    assert.equal(runtimeClassName("qemu"), "kata-qemu");
  });

  it("a 46-character suffix truncates exactly the t63 names (the chart's checked example)", () => {
    const s = "s".repeat(46);
    const n = chartNames(s);
    assert.equal(n.installDispatcherJob, `kata-deploy-${s}-inst`);
    assert.equal(n.jobTemplatesConfigMap, `kata-deploy-${s}-job`);
    // Not truncated by the chart:
    assert.equal(n.installNamePrefix, `kata-deploy-${s}-install`);
    assert.equal(n.dispatcherServiceAccount, `kata-deploy-dispatcher-sa-${s}`);
    assert.equal(runtimeClassName("qemu", "dev"), "kata-qemu-dev");
  });
});
