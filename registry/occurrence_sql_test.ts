import { stringify } from "csv-stringify/sync";
import { assertEquals } from "../tests/assert.ts";
import { serviceTest, testDatabase } from "../tests/support.ts";
import { csvField, jsNumberText } from "./occurrence_sql.ts";

Deno.test({
  name: "occurrence_sql: jsNumberText writes float8 as JavaScript's String(number)",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(1);
    try {
      const values = [
        0,
        -0,
        1,
        -1,
        0.91,
        0.1 + 0.2,
        1e-4,
        9.99e-5,
        -2.5e-5,
        1e-6,
        1.5e-7,
        1e-7,
        5e-324,
        3600,
        123456789.125,
        1e15,
        1.25e16,
        1e20,
        1e21,
        1.5e22,
        1.7976931348623157e308,
      ];
      for (const value of values) {
        const [row] = await sql<{ text: string }[]>`
          select ${jsNumberText(sql, sql`${value}::float8`)} as text`;
        assertEquals(row.text, String(value), `float8 ${value}`);
      }
      const [empty] = await sql<{ text: string | null }[]>`
        select ${jsNumberText(sql, sql`null::float8`)} as text`;
      assertEquals(empty.text, null);
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "occurrence_sql: csvField quotes as csv-stringify does",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(1);
    try {
      const options = { record_delimiter: "\r\n", quoted_match: /[\r\n]/ };
      for (const value of ["plain", "a,b", 'say "hi"', "two\nlines", "cr\ronly", "", " x "]) {
        const [row] = await sql<{ text: string }[]>`select ${
          csvField(sql, sql`${value}::text`)
        } as text`;
        assertEquals(row.text + "\r\n", stringify([[value]], options), JSON.stringify(value));
      }
    } finally {
      await sql.end();
    }
  },
});
