import { parse } from "csv-parse/sync";
import { assert, assertEquals } from "../../tests/assert.ts";
import { createSmallProject } from "../../tests/fixtures/small_project.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { taxaListCsv, taxaListCsvColumns } from "./taxa_list_csv.ts";
import { assertShardsAgree, smallProjectTest } from "./test_support.ts";

const decoder = new TextDecoder();

smallProjectTest(
  "taxa_list_csv: one row per determined taxon with its aggregates, filters, resume",
  async ({ sql, p, ctx }) => {
    await createSmallProject(sql);
    const { bytes, records } = await assertResumable(taxaListCsv, ctx, 1);
    const table = parse(decoder.decode(bytes)) as string[][];
    assertEquals(table[0], [...taxaListCsvColumns]);
    const rows = parse(decoder.decode(bytes), { columns: true }) as Record<string, string>[];
    const { noctuidae, agrotis, catocala } = p.taxa;
    assertEquals(rows.map((r) => Number(r.taxon_id)), [noctuidae, agrotis, catocala]);
    assertEquals(records, 3);
    assertEquals(Number(await taxaListCsv.count(ctx)), 3);
    // rich (0.91, verified) and agreesWithPrediction (1, verified), both night 1 in the north
    assertEquals(rows[1], {
      taxon_id: String(agrotis),
      taxon_name: "Agrotis ipsilon",
      taxon_rank: "SPECIES",
      order_name: "Lepidoptera",
      family_name: "Noctuidae",
      genus_name: "",
      gbif_taxon_key: "",
      common_name_en: "",
      occurrence_count: "2",
      verified_count: "2",
      determination_score_min: "0.91",
      determination_score_avg: "0.955",
      determination_score_max: "1",
      first_seen: "2024-06-01T22:15:03Z",
      last_seen: "2024-06-01T23:00:00Z",
      deployments_count: "1",
      events_count: "1",
    });
    // machineOnly: the family itself; only a withdrawn identification
    assertEquals(
      [rows[0].family_name, rows[0].occurrence_count, rows[0].verified_count, rows[0].last_seen],
      ["Noctuidae", "1", "0", "2024-06-03T22:33:00Z"],
    );
    // noEvent: no event
    assertEquals([rows[2].events_count, rows[2].deployments_count], ["0", "1"]);

    const verified = await drainStream(taxaListCsv, { ...ctx, filters: { verified: true } }, {
      limit: 10,
    });
    const vRows = parse(decoder.decode(verified.bytes), { columns: true }) as Record<
      string,
      string
    >[];
    assertEquals(vRows.map((r) => Number(r.taxon_id)), [agrotis]);
  },
);

smallProjectTest(
  "taxa_list_csv shards by taxon id: every n-th key, shards concatenate to the file, filters too",
  async ({ ctx, filtered }) => {
    for (const every of [1, 2]) {
      assert((await assertShardsAgree(taxaListCsv, ctx, every, "taxon_id")) >= 2);
    }
    await assertShardsAgree(taxaListCsv, filtered({ verified: true }), 1, "taxon_id");
  },
);
