// How `npm start` composes the component args: the --args file, the options, the demo defaults (main/args.ts).
import assert from "node:assert/strict";
import { composeArgs, type ArgOption } from "../../main/args";
import { summaryText } from "../../main/report";
import { UsageError } from "../../stdio/exit";

const options = (explicit: Partial<Record<"mode" | "parallelism", boolean>> = {}): ArgOption[] => [
  { flag: "--mode", path: ["deploymentMode"], value: "job", explicit: explicit.mode ?? false },
  { flag: "--parallelism", path: ["job", "parallelism"], value: 20, explicit: explicit.parallelism ?? false },
];

describe("main: npm start's component args", () => {
  it("fills what the file leaves out with the options' values and the demo defaults", () => {
    const args = composeArgs(
      { job: { ttlSecondsAfterFinished: 0 }, rollout: { stuckGraceSeconds: 60 } },
      options(),
    );
    assert.deepEqual(args, {
      deploymentMode: "job",
      job: { ttlSecondsAfterFinished: 0, parallelism: 20 },
      rollout: { stuckGraceSeconds: 60, timeoutSeconds: 3600 },
      createNamespace: true,
      releaseName: "kata-deploy",
    });
  });

  it("a file's mode wins over the option's default, and job.* defaults stay out of daemonset mode", () => {
    assert.equal(composeArgs({ deploymentMode: "daemonset" }, options()).job, undefined);
    const viaValues = composeArgs({ values: { deploymentMode: "daemonset" } }, options());
    assert.equal(viaValues.deploymentMode, undefined);
    assert.equal(viaValues.job, undefined);
  });

  it("an option given on the command line that the file also sets is refused, naming both", () => {
    assert.throws(
      () => composeArgs({ job: { parallelism: 3 } }, options({ parallelism: true }), "a.yaml"),
      (e: Error) =>
        e instanceof UsageError && /--parallelism and job\.parallelism in a\.yaml/.test(e.message),
    );
    assert.equal(
      composeArgs({ job: { parallelism: 3 } }, options()).job && 3,
      3,
      "a default yields silently",
    );
    assert.throws(() => composeArgs(["a"], options()), UsageError);
  });

  it("the summary lists every node that did not succeed, failed first, and the slowest nodes", () => {
    const text = summaryText(
      [
        { node: "b", outcome: "skipped", attempts: 0, reason: "Tainted", message: "taint x=y:NoSchedule" },
        { node: "a", outcome: "failed", attempts: 3, reason: "BackoffLimitExceeded", message: "exit 1" },
        {
          node: "c",
          outcome: "succeeded",
          attempts: 1,
          startedAt: "2026-01-01T00:00:00Z",
          finishedAt: "2026-01-01T00:02:05Z",
        },
      ],
      { total: 3, succeeded: 1, failed: 1, skipped: 1, durationSeconds: 130 },
      "heading",
    ).split("\n");
    assert.deepEqual(text, [
      "heading",
      "1 of 3 nodes succeeded, 1 failed, 1 skipped in 2m10s",
      "",
      "Failed (1):",
      "  a  3 attempts  BackoffLimitExceeded: exit 1",
      "",
      "Skipped (1):",
      "  b  Tainted: taint x=y:NoSchedule",
      "",
      "Slowest nodes (first Job start to finish, by the cluster's clock):",
      "  c   2m05s  succeeded, 1 attempt",
    ]);
  });
});
