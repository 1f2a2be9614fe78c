// Pagination and watch semantics (kubernetes-api-facts.md §3, §4), through client-node and raw streams.
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { Clients, eventually, expectStatus, raw, rawWatch, startWithClients } from "./helpers";

describe("kube-sim list pagination", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    // Walking 10,000 objects must never outlive a continue token, even on a busy machine; expiry has its own test.
    // Plain http: client-node opens a connection per page, and 1,430 TLS handshakes are not this suite's subject.
    c = await startWithClients({
      continueTtlMs: 120_000,
      watchHistory: 50,
      bookmarkIntervalMs: 100,
      plainHttp: true,
    });
    await c.core.createNamespace({ body: { metadata: { name: "many" } } });
    for (let i = 0; i < 10_000; i++) {
      c.sim.create("configmaps", {
        metadata: {
          name: `cm-${String(i).padStart(5, "0")}`,
          namespace: "many",
          labels: { parity: i % 2 ? "odd" : "even" },
        },
      });
    }
  });
  after(() => c.sim.close());

  it("pages 10,000 objects by 7 without losing or repeating one, at one resourceVersion", async () => {
    const seen = new Set<string>();
    let token: string | undefined;
    let rv: string | undefined;
    let pages = 0;
    do {
      const page = await c.core.listNamespacedConfigMap({ namespace: "many", limit: 7, _continue: token });
      pages++;
      assert.ok(page.items.length <= 7);
      rv = rv ?? page.metadata?.resourceVersion;
      assert.equal(page.metadata?.resourceVersion, rv, "every page carries the first page's resourceVersion");
      for (const cm of page.items) {
        assert.ok(!seen.has(cm.metadata!.name!), `duplicate ${cm.metadata?.name}`);
        seen.add(cm.metadata!.name!);
      }
      token = page.metadata?._continue || undefined;
      if (token) assert.equal(page.metadata?.remainingItemCount, 10_000 - seen.size);
    } while (token && pages < 2000);
    assert.equal(seen.size, 10_000);
    assert.equal(pages, Math.ceil(10_000 / 7));
  });

  it("serves later pages from the first page's snapshot even when objects change meanwhile", async () => {
    const first = await c.core.listNamespacedConfigMap({
      namespace: "many",
      limit: 5000,
      labelSelector: "parity=even",
    });
    assert.equal(first.items.length, 5000);
    assert.ok(
      first.metadata?._continue === undefined || first.metadata?._continue === "",
      "the last matching page has no continue token",
    );
    const page1 = await c.core.listNamespacedConfigMap({ namespace: "many", limit: 100 });
    c.sim.delete("configmaps", "many", "cm-09999");
    c.sim.create("configmaps", { metadata: { name: "cm-99999", namespace: "many" } });
    let token = page1.metadata?._continue;
    let total = page1.items.length;
    let sawNew = false;
    while (token) {
      const page = await c.core.listNamespacedConfigMap({ namespace: "many", limit: 2000, _continue: token });
      total += page.items.length;
      sawNew = sawNew || page.items.some((i) => i.metadata?.name === "cm-99999");
      token = page.metadata?._continue;
    }
    assert.equal(total, 10_000, "the snapshot still holds the deleted object and not the new one");
    assert.equal(sawNew, false);
    const now = await c.core.listNamespacedConfigMap({ namespace: "many" });
    assert.equal(now.items.length, 10_000);
    assert.ok(now.items.some((i) => i.metadata?.name === "cm-99999"));
  });

  it("answers 410 Expired for a continue token older than its lifetime, 400 for a malformed one", async () => {
    const short = await startWithClients({ continueTtlMs: 300 });
    try {
      await short.core.createNamespace({ body: { metadata: { name: "few" } } });
      for (let i = 0; i < 20; i++)
        short.sim.create("configmaps", { metadata: { name: `cm-${i}`, namespace: "few" } });
      const page = await short.core.listNamespacedConfigMap({ namespace: "few", limit: 10 });
      short.sim.create("configmaps", { metadata: { name: "bump", namespace: "few" } });
      await new Promise((r) => setTimeout(r, 500));
      const gone = await expectStatus(
        short.core.listNamespacedConfigMap({
          namespace: "few",
          limit: 10,
          _continue: page.metadata?._continue,
        }),
        410,
        "Expired",
      );
      assert.equal(
        gone.message,
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
      );
      const bad = await expectStatus(
        short.core.listNamespacedConfigMap({ namespace: "few", limit: 10, _continue: "not-a-token" }),
        400,
        "BadRequest",
      );
      assert.match(bad.message ?? "", /^invalid continue token/);
    } finally {
      await short.sim.close();
    }
  });
});

describe("kube-sim list options", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({});
    for (let i = 0; i < 20; i++)
      c.sim.create("configmaps", { metadata: { name: `o-${i}`, namespace: "default" } });
  });
  after(() => c.sim.close());

  it("validates resourceVersionMatch and sendInitialEvents like kube-apiserver (422 on ListOptions)", async () => {
    const noRv = await raw(c.sim, "GET", "/api/v1/namespaces/default/configmaps?resourceVersionMatch=Exact");
    assert.equal(noRv.status, 422);
    const body = JSON.parse(noRv.body);
    assert.equal(body.reason, "Invalid");
    assert.equal(body.details.kind, "ListOptions");
    assert.equal(body.details.group, "meta.k8s.io");
    assert.match(body.message, /resourceVersionMatch is forbidden unless resourceVersion is provided/);
    assert.equal(
      (await raw(c.sim, "GET", "/api/v1/namespaces/default/configmaps?sendInitialEvents=true")).status,
      422,
    );
    const both = await raw(
      c.sim,
      "GET",
      "/api/v1/namespaces/default/configmaps?resourceVersion=5&continue=abc",
    );
    assert.equal(both.status, 400);
  });

  it("sends metadata only when asked (PartialObjectMetadataList, paged; PartialObjectMetadata on a get)", async () => {
    c.sim.create("configmaps", {
      metadata: { name: "labelled", namespace: "default", labels: { a: "b" }, annotations: { n: "o" } },
      data: { big: "x".repeat(1000) },
    });
    const accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    const names: string[] = [];
    let token = "";
    do {
      const page = JSON.parse(
        (
          await raw(c.sim, "GET", `/api/v1/namespaces/default/configmaps?limit=8&continue=${token}`, {
            accept,
          })
        ).body,
      );
      assert.equal(page.kind, "PartialObjectMetadataList");
      assert.equal(page.apiVersion, "meta.k8s.io/v1");
      for (const item of page.items) {
        assert.deepEqual(Object.keys(item).sort(), ["apiVersion", "kind", "metadata"]);
        assert.equal(item.kind, "PartialObjectMetadata");
        names.push(item.metadata.name);
        if (item.metadata.name === "labelled") {
          assert.deepEqual([item.metadata.labels, item.metadata.annotations], [{ a: "b" }, { n: "o" }]);
        }
      }
      token = page.metadata.continue ?? "";
    } while (token);
    assert.equal(names.length, 21);
    const one = await raw(c.sim, "GET", "/api/v1/namespaces/default/configmaps/labelled", {
      accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    });
    assert.deepEqual(JSON.parse(one.body).metadata.labels, { a: "b" });
    assert.equal(JSON.parse(one.body).data, undefined);
    // The list kind on a get, the object kind on a list: not what the server can give.
    const wrong = await raw(c.sim, "GET", "/api/v1/namespaces/default/configmaps", {
      accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    });
    assert.equal(wrong.status, 406);
  });

  it("serves an exact resourceVersion from its snapshot and answers 410 when it is gone", async () => {
    const first = await c.core.listNamespacedConfigMap({ namespace: "default", limit: 5 });
    const rv = first.metadata!.resourceVersion!;
    c.sim.create("configmaps", { metadata: { name: "later", namespace: "default" } });
    const again = await c.core.listNamespacedConfigMap({
      namespace: "default",
      limit: 100,
      resourceVersion: rv,
      resourceVersionMatch: "Exact",
    });
    assert.equal(again.metadata?.resourceVersion, rv);
    assert.ok(!again.items.some((i) => i.metadata?.name === "later"), "the snapshot predates the new object");
    const gone = await expectStatus(
      c.core.listNamespacedConfigMap({
        namespace: "default",
        limit: 5,
        resourceVersion: "3",
        resourceVersionMatch: "Exact",
      }),
      410,
      "Expired",
    );
    assert.match(gone.message ?? "", /^too old resource version: 3 \(\d+\)$/);
    const notOlder = await c.core.listNamespacedConfigMap({
      namespace: "default",
      resourceVersion: rv,
      resourceVersionMatch: "NotOlderThan",
    });
    assert.ok(notOlder.items.some((i) => i.metadata?.name === "later"));
  });
});

describe("kube-sim watch", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({ watchHistory: 20, bookmarkIntervalMs: 100 });
  });
  after(() => c.sim.close());

  it("resumes after a dropped stream from the last resourceVersion without missing or repeating an event", async () => {
    const list = await c.core.listNamespacedConfigMap({ namespace: "default" });
    let rv = list.metadata!.resourceVersion!;
    const received: string[] = [];
    const expected: string[] = [];
    let i = 0;
    for (let round = 0; round < 3; round++) {
      const w = rawWatch(c.sim, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`);
      await new Promise((r) => setTimeout(r, 30));
      for (let k = 0; k < 4; k++) {
        const name = `w-${i++}`;
        c.sim.create("configmaps", { metadata: { name, namespace: "default" } });
        expected.push(`ADDED ${name}`);
        // Changes while no watch is open must arrive after resuming.
        if (k === 3) {
          await eventually(() => w.events.length >= 4, 5000, "events on the open watch");
          w.close();
          await w.ended;
          c.sim.patch("configmaps", "default", name, { data: { x: "1" } });
          expected.push(`MODIFIED ${name}`);
        }
      }
      for (const e of w.events) {
        received.push(`${e.type} ${e.object.metadata?.name}`);
        rv = e.object.metadata!.resourceVersion!;
      }
    }
    const last = rawWatch(c.sim, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`);
    await eventually(() => last.events.length >= 1, 5000, "the replayed MODIFIED of the last round");
    last.close();
    for (const e of last.events) received.push(`${e.type} ${e.object.metadata?.name}`);
    // The MODIFIED of round r is replayed in round r+1, and the last one at the end.
    assert.deepEqual([...received].sort(), [...expected].sort());
    assert.equal(new Set(received).size, received.length, "no event twice");
  });

  it("sends one ERROR event with 410 Expired for a too old resourceVersion, then ends", async () => {
    const start = await c.core.listNamespacedConfigMap({ namespace: "default" });
    const old = start.metadata!.resourceVersion!;
    for (let i = 0; i < 30; i++)
      c.sim.create("configmaps", { metadata: { name: `churn-${i}`, namespace: "default" } });
    const w = rawWatch(c.sim, `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${old}`);
    await w.ended;
    assert.equal(w.events.length, 1);
    assert.equal(w.events[0].type, "ERROR");
    assert.equal(w.events[0].object.code, 410);
    assert.equal(w.events[0].object.reason, "Expired");
    assert.match(
      w.events[0].object.message ?? "",
      new RegExp(`^too old resource version: ${old} \\(\\d+\\)$`),
    );
  });

  it("starts with synthetic ADDED events without a resourceVersion, sends bookmarks, and moves objects across selectors", async () => {
    c.sim.create("configmaps", { metadata: { name: "sel", namespace: "default", labels: { tier: "a" } } });
    const w = rawWatch(
      c.sim,
      "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=tier%3Da&allowWatchBookmarks=true",
    );
    await eventually(
      () => w.events.some((e) => e.type === "ADDED" && e.object.metadata?.name === "sel"),
      3000,
      "synthetic ADDED",
    );
    c.sim.patch("configmaps", "default", "sel", { metadata: { labels: { tier: "b" } } });
    c.sim.patch("configmaps", "default", "sel", { metadata: { labels: { tier: "a" } } });
    c.sim.delete("configmaps", "default", "sel");
    await eventually(
      () => w.events.filter((e) => e.type !== "BOOKMARK").length >= 4,
      3000,
      "selector transitions",
    );
    await eventually(() => w.events.some((e) => e.type === "BOOKMARK"), 3000, "a bookmark");
    w.close();
    const kinds = w.events.filter((e) => e.type !== "BOOKMARK").map((e) => e.type);
    assert.deepEqual(kinds, ["ADDED", "DELETED", "ADDED", "DELETED"]);
    const bookmark = w.events.find((e) => e.type === "BOOKMARK");
    assert.ok(Number(bookmark?.object.metadata?.resourceVersion) > 0);
  });

  it("ends the stream at timeoutSeconds and rejects bad selectors with 400 before streaming", async () => {
    const started = Date.now();
    const w = rawWatch(c.sim, "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1");
    await w.ended;
    assert.ok(Date.now() - started >= 900);
    const bad = await raw(
      c.sim,
      "GET",
      "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=x%20in%20(a",
    );
    assert.equal(bad.status, 400);
  });

  it("feeds client-node's ListWatch informer, which recovers from a dropped stream", async () => {
    const path = "/api/v1/namespaces/default/configmaps";
    const watch = new k8s.Watch(c.kc);
    const informer = new k8s.ListWatch<k8s.V1ConfigMap>(
      path,
      watch,
      () => c.core.listNamespacedConfigMap({ namespace: "default" }),
      false,
    );
    const added: string[] = [];
    informer.on("add", (o) => added.push(o.metadata!.name!));
    // client-node's ListWatch stops on a stream error; restarting it is the caller's job.
    let restarts = 0;
    let stopping = false;
    informer.on("error", () => {
      if (stopping) return;
      restarts++;
      setTimeout(() => void informer.start(), 20);
    });
    await informer.start();
    c.sim.create("configmaps", { metadata: { name: "informed", namespace: "default" } });
    await eventually(
      () => informer.get("informed", "default") !== undefined,
      5000,
      "informer sees the new object",
    );
    c.sim.faults.set({ dropWatchEverySeconds: 0.3 });
    await eventually(() => (c.sim.faults.injected()["watch-drop"] ?? 0) >= 1, 5000, "a dropped watch");
    c.sim.faults.clear();
    c.sim.create("configmaps", { metadata: { name: "after-drop", namespace: "default" } });
    await eventually(
      () => informer.get("after-drop", "default") !== undefined,
      10_000,
      "informer recovers after the drop",
    );
    stopping = true;
    await informer.stop();
    assert.ok(added.includes("informed") && added.includes("after-drop"));
    assert.ok(restarts >= 1, "the abrupt drop surfaced as a stream error");
  });
});
