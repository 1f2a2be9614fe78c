import assert from "node:assert/strict";
import { renderProfileSvg } from "../../main/profile";
import { eta, formatSeconds } from "../../main/progress";
import { resultsTable } from "../../main/report";

describe("main: report, progress and profile", () => {
  it("lists failed nodes first, then skipped, then succeeded, each by name", () => {
    const table = resultsTable([
      { node: "b", outcome: "succeeded", attempts: 1 },
      {
        node: "a",
        outcome: "succeeded",
        attempts: 1,
        startedAt: "2026-01-01T00:00:00Z",
        finishedAt: "2026-01-01T00:02:00Z",
      },
      { node: "z", outcome: "failed", attempts: 4, message: "container host-check exited 1: no backend" },
      { node: "m", outcome: "skipped", attempts: 0, reason: "Tainted" },
    ]).split("\n");
    assert.deepEqual(
      table.map((l) => l.split(/\s+/)[0]),
      ["NODE", "z", "m", "a", "b"],
    );
    assert.match(table[1], /failed +4 +container host-check exited 1: no backend$/);
    assert.match(table[3], /120s/);
  });

  it("estimates the remaining time from the completion rate", () => {
    assert.equal(eta({ total: 100, done: 0, failed: 0, inFlight: 10 }, 5000), undefined);
    assert.equal(eta({ total: 100, done: 25, failed: 0, inFlight: 10 }, 10_000), 30);
    assert.equal(eta({ total: 10, done: 10, failed: 0, inFlight: 0 }, 10_000), 0);
    assert.equal(formatSeconds(59.6), "1m00s");
    assert.equal(formatSeconds(125), "2m05s");
  });

  it("draws in-flight Jobs against the parallelism line and completions over time", () => {
    const svg = renderProfileSvg({
      title: "a <b> & c",
      parallelism: 20,
      total: 40,
      samples: [
        { t: 0, active: 0, done: 0 },
        { t: 1000, active: 20, done: 0 },
        { t: 2000, active: 20, done: 20 },
        { t: 3000, active: 0, done: 40 },
      ],
    });
    assert.match(svg, /a &lt;b&gt; &amp; c/);
    assert.match(svg, /parallelism 20/);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
    // Step lines: 4 samples give 7 points per line.
    const points = [...svg.matchAll(/points="([^"]+)"/g)].map((m) => m[1].split(" ").length);
    assert.deepEqual(points, [7, 7]);
  });
});
