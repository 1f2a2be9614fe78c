// The rollout profile as an SVG picture: Jobs in flight over time against the parallelism line, and
// completions over time. Pure: takes samples, returns SVG text (hand-written because it is ~60 lines
// of markup and an SVG/plotting dependency would outweigh it).

export interface ProfileSample {
  /** Milliseconds since the rollout started. */
  t: number;
  /** Per-node Jobs active at that moment. */
  active: number;
  /** Nodes finished (succeeded or failed) by that moment. */
  done: number;
}

export interface ProfileInput {
  title: string;
  parallelism: number;
  total: number;
  samples: ProfileSample[];
}

const WIDTH = 900;
const HEIGHT = 420;
const MARGIN = { left: 60, right: 70, top: 40, bottom: 50 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c] ?? c);
}

function polyline(points: Array<[number, number]>, color: string, extra = ""): string {
  const d = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  return `<polyline fill="none" stroke="${color}" stroke-width="1.5" ${extra} points="${d}"/>`;
}

/** Left axis: Jobs in flight (0 .. max(parallelism, peak) + 10%); right axis: nodes done (0 .. total). */
export function renderProfileSvg(input: ProfileInput): string {
  const samples = input.samples.length > 0 ? input.samples : [{ t: 0, active: 0, done: 0 }];
  const endT = Math.max(1, samples[samples.length - 1].t);
  // A loop, not Math.max(...): a 100,000-node rollout has hundreds of thousands of samples.
  const peak = samples.reduce((m, s) => (s.active > m ? s.active : m), input.parallelism);
  const activeMax = Math.ceil(peak * 1.1) || 1;
  const doneMax = Math.max(1, input.total);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + (t / endT) * plotW;
  const yActive = (v: number) => MARGIN.top + plotH - (v / activeMax) * plotH;
  const yDone = (v: number) => MARGIN.top + plotH - (v / doneMax) * plotH;

  // Step lines: a value holds until the next sample.
  const activePts: Array<[number, number]> = [];
  const donePts: Array<[number, number]> = [];
  samples.forEach((s, i) => {
    if (i > 0) {
      activePts.push([x(s.t), yActive(samples[i - 1].active)]);
      donePts.push([x(s.t), yDone(samples[i - 1].done)]);
    }
    activePts.push([x(s.t), yActive(s.active)]);
    donePts.push([x(s.t), yDone(s.done)]);
  });

  const ticks = 5;
  const grid: string[] = [];
  for (let i = 0; i <= ticks; i++) {
    const y = MARGIN.top + (plotH * i) / ticks;
    const a = Math.round(activeMax * (1 - i / ticks));
    const d = Math.round(doneMax * (1 - i / ticks));
    const tx = MARGIN.left + (plotW * i) / ticks;
    grid.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`,
      `<text x="${MARGIN.left - 8}" y="${y + 4}" text-anchor="end" fill="#1f77b4">${a}</text>`,
      `<text x="${MARGIN.left + plotW + 8}" y="${y + 4}" fill="#2ca02c">${d}</text>`,
      `<text x="${tx}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${((endT * i) / ticks / 1000).toFixed(1)}s</text>`,
    );
  }
  const pY = yActive(input.parallelism);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(input.title)}</text>`,
    ...grid,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${pY}" y2="${pY}" stroke="#d62728" stroke-dasharray="6,4"/>`,
    `<text x="${MARGIN.left + 6}" y="${pY - 6}" fill="#d62728">parallelism ${input.parallelism}</text>`,
    polyline(activePts, "#1f77b4"),
    polyline(donePts, "#2ca02c"),
    `<text x="${MARGIN.left}" y="${HEIGHT - 12}" fill="#1f77b4">— Jobs in flight (left axis)</text>`,
    `<text x="${MARGIN.left + 220}" y="${HEIGHT - 12}" fill="#2ca02c">— nodes done of ${input.total} (right axis)</text>`,
    `<text x="${MARGIN.left + plotW}" y="${HEIGHT - 12}" text-anchor="end">time since start (wall clock)</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
