import { assertEquals } from "../tests/assert.ts";
import { formatEta, formatRecords, pendingPayload, recordsProgress } from "./terminal.ts";

Deno.test("ETAs are readable and never Infinity or NaN", () => {
  assertEquals(formatEta(0, null, 0), "–");
  assertEquals(formatEta(0, 1000, 0), "–");
  assertEquals(formatEta(0, 1000, Infinity), "–");
  assertEquals(formatEta(500, 1000, 100), "5s");
  assertEquals(formatEta(0, 10_000, 50), "3m20s");
  assertEquals(formatEta(0, 1_000_000, 100), "2h46m");
  assertEquals(formatEta(1000, 1000, 0), "done");
  assertEquals(formatEta(0, 0, 0), "done");
});

Deno.test("record counts say when the total is not known yet", () => {
  assertEquals(formatRecords(0, null), "counting records…");
  assertEquals(formatRecords(1234, 20000), "1,234/20,000 records");
});

Deno.test("an export's polls are drawn as records of the total, then its record count", () => {
  const drawn: { total: number; value: number; payload: Record<string, unknown> }[] = [];
  let total = 0;
  const draw = recordsProgress({
    setTotal: (n) => total = n,
    update: (value, payload) => drawn.push({ total, value, payload }),
  });
  assertEquals(draw({ status: "PENDING", recordCount: 0, params: [] }, "PENDING"), {
    total: null,
    done: 0,
  });
  assertEquals(drawn.at(-1), {
    total: 1,
    value: 0,
    payload: { ...pendingPayload(), status: "PENDING" },
  });
  const params = [{ key: "total_records", value: 200 }, { key: "records_exported", value: 50 }];
  assertEquals(draw({ status: "STARTED", recordCount: 0, params }, "STARTED (reused)"), {
    total: 200,
    done: 50,
  });
  assertEquals(drawn.at(-1), {
    total: 200,
    value: 50,
    payload: { records: "50/200 records", rate: 0, left: "–", status: "STARTED (reused)" },
  });
  assertEquals(draw({ status: "SUCCESS", recordCount: 180, params }, "SUCCESS"), {
    total: 180,
    done: 180,
  });
  assertEquals(drawn.at(-1)?.payload.left, "done");
});
