import { assert, assertEquals } from "../../tests/assert.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { taxonCountsCsv, taxonCountsCsvColumns } from "./taxon_counts_csv.ts";
import { assertShardsAgree, csvRows, smallProjectTest } from "./test_support.ts";

smallProjectTest(
  "taxon_counts_csv: valid occurrences by session × taxon, ranks, filters, resume",
  async ({ p, ctx }) => {
    const { bytes, records } = await assertResumable(taxonCountsCsv, ctx, 1);
    const rows = await csvRows(bytes);
    assertEquals(rows[0], [...taxonCountsCsvColumns]);
    const night1 = String(p.events.night1);
    const night2 = String(p.events.night2);
    assertEquals(rows.slice(1), [
      // rich and agreesWithPrediction; noEvent (no session) has no row
      [night1, String(p.deployments.north), "2024-06-01", String(p.taxa.agrotis)]
        .concat(["Agrotis ipsilon", "SPECIES", "Lepidoptera", "Noctuidae", "", "Agrotis ipsilon"])
        .concat(["2"]),
      [night2, String(p.deployments.south), "2024-06-03", String(p.taxa.noctuidae)]
        .concat(["Noctuidae", "FAMILY", "Lepidoptera", "Noctuidae", "", "", "1"]),
    ]);
    assertEquals(records, 2);
    assertEquals(Number(await taxonCountsCsv.count(ctx)), 2);
    // the occurrence filters apply
    const verified = { ...ctx, filters: { verified: true } };
    const v = await drainStream(taxonCountsCsv, verified, { limit: 10 });
    const vRows = await csvRows(v.bytes);
    assertEquals(vRows.slice(1).map((r) => [r[0], r[3], r[10]]), [
      [night1, String(p.taxa.agrotis), "2"],
    ]);
    assertEquals(Number(await taxonCountsCsv.count(verified)), 1);
  },
);

smallProjectTest(
  "taxon_counts_csv shards by session: a shard holds every taxon group of its sessions, " +
    "shards concatenate to the file",
  async ({ ctx }) => {
    // two sessions of one group each: a bound after each (the last shard empty), then after both
    assertEquals(await assertShardsAgree(taxonCountsCsv, ctx, 1, "event_id"), 3);
    assertEquals(await assertShardsAgree(taxonCountsCsv, ctx, 2, "event_id"), 2);
    assert(taxonCountsCsv.kind === "stream" && taxonCountsCsv.shard !== undefined);
  },
);

smallProjectTest(
  "taxon_counts_csv: an occurrence whose session is another project's is neither a row nor " +
    "counted (count equals the rows, shard bounds too)",
  async ({ sql, p, ctx }) => {
    const [{ id: other }] = await sql<{ id: number }[]>`
      insert into projects (name, slug) values ('other', ${crypto.randomUUID()}) returning id`;
    const [{ id: station }] = await sql<{ id: number }[]>`
      insert into deployments (project_id, name) values (${other}, 'elsewhere') returning id`;
    const [{ id: foreign }] = await sql<{ id: number }[]>`
      insert into events (project_id, deployment_id, start, "end")
      values (${other}, ${station}, '2024-06-01T21:00Z', '2024-06-02T05:00Z') returning id`;
    await sql`update occurrences set event_id = ${foreign}
      where id = ${p.occurrences.agreesWithPrediction}`;
    const { bytes, records } = await assertResumable(taxonCountsCsv, ctx, 1);
    const rows = (await csvRows(bytes)).slice(1);
    assertEquals(rows.map((r) => [r[0], r[10]]), [
      [String(p.events.night1), "1"], // rich alone now
      [String(p.events.night2), "1"],
    ]);
    assertEquals(records, 2);
    assertEquals(Number(await taxonCountsCsv.count(ctx)), 2);
    assertEquals(await assertShardsAgree(taxonCountsCsv, ctx, 1, "event_id"), 3);
  },
);
