// The bench's pure figures: slot refill matching and the p50/p99/max spread, against hand-worked tables.
import { strict as assert } from "node:assert";
import { percentile, slotRefills, spread } from "../../bench/metrics";

describe("bench metrics: slot refills", () => {
  const cases: {
    name: string;
    created: number[];
    ended: number[];
    parallelism: number;
    want: number[];
  }[] = [
    {
      name: "no Job beyond the first P: nothing to refill",
      created: [0, 0],
      ended: [10, 12],
      parallelism: 2,
      want: [],
    },
    {
      name: "P = 1: each creation waits for the previous end",
      created: [0, 10, 25],
      ended: [8, 21, 30],
      parallelism: 1,
      want: [2, 4],
    },
    {
      // Creations 3 and 4 take the slots freed by ends 1 and 2 (0-based: created[2]-ended[0], created[3]-ended[1]).
      name: "P = 2: the i-th creation after the first P waits for the (i-P)-th end",
      created: [0, 0, 105, 130],
      ended: [100, 120, 200, 230],
      parallelism: 2,
      want: [5, 10],
    },
    {
      name: "a creation before its matched end counts as 0, not negative",
      created: [0, 5],
      ended: [7],
      parallelism: 1,
      want: [0],
    },
    {
      name: "an end not seen yet leaves the creation unmatched",
      created: [0, 50, 60],
      ended: [40],
      parallelism: 1,
      want: [10],
    },
    {
      name: "result ascending whatever the order of the delays",
      created: [0, 30, 31],
      ended: [1, 10],
      parallelism: 1,
      want: [21, 29],
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(slotRefills(c.created, c.ended, c.parallelism), c.want));
  }
});

describe("bench metrics: spread", () => {
  const cases: { name: string; sorted: number[]; want: ReturnType<typeof spread> }[] = [
    { name: "empty", sorted: [], want: { p50: 0, p99: 0, max: 0, count: 0 } },
    { name: "one value", sorted: [7], want: { p50: 7, p99: 7, max: 7, count: 1 } },
    {
      name: "four values: nearest rank",
      sorted: [1, 2, 3, 40],
      want: { p50: 2, p99: 40, max: 40, count: 4 },
    },
    {
      // 1..200: nearest rank ceil(0.5*200)=100 -> 100, ceil(0.99*200)=198 -> 198.
      name: "1..200",
      sorted: Array.from({ length: 200 }, (_, i) => i + 1),
      want: { p50: 100, p99: 198, max: 200, count: 200 },
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(spread(c.sorted), c.want));

  it("percentile clamps p to the ends", () => {
    assert.equal(percentile([3, 4, 5], 0), 3);
    assert.equal(percentile([3, 4, 5], 100), 5);
  });
});
