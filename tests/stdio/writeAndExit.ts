// Test program for tests/stdio/exit.test.ts: writes `<bytes>` of JSON to stdout, says "written" on stderr, then
// ends through runCommand (`drain`; `usage`: then fails with a UsageError) or with a bare process.exit (`exit`, what
// the commands did before).
// A timer stays armed, as the commands' servers and informers keep the event loop alive.
import { runCommand, UsageError } from "../../stdio/exit";

const [how, bytes] = process.argv.slice(2);
const items = Array.from({ length: Math.ceil(Number(bytes) / 100) }, (_, i) => ({ i, pad: "x".repeat(80) }));

async function main(): Promise<number> {
  process.stdout.write(`${JSON.stringify({ items })}\n`);
  process.stderr.write("written\n");
  setInterval(() => undefined, 60_000);
  return 3;
}

if (how === "drain") runCommand("writeAndExit", main, 1);
else if (how === "usage")
  runCommand(
    "writeAndExit",
    async () => {
      await main();
      throw new UsageError("--size: too big");
    },
    1,
  );
else void main().then((code) => process.exit(code));
