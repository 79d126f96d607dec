import { assertEquals } from "../tests/assert.ts";
import { admissionPlan, type WaitingExport } from "./admission.ts";

function waitingOf(users: [number | null, number][], firstId = 1): WaitingExport[] {
  return users.map(([userId, projectId], i) => ({ id: firstId + i, userId, projectId }));
}

Deno.test("nothing waiting: nothing to admit", () => {
  assertEquals(admissionPlan([], [{ userId: 1, projectId: 1 }], { perUser: 2, perProject: 8 }), {
    order: [],
    admit: [],
  });
});

Deno.test("FIFO within one user; admitted up to the user cap", () => {
  const waiting = waitingOf([[1, 1], [1, 1], [1, 1], [1, 1]]);
  assertEquals(admissionPlan(waiting, [], { perUser: 2, perProject: 0 }), {
    order: [1, 2, 3, 4],
    admit: [1, 2],
  });
  // one already running: one more slot
  assertEquals(
    admissionPlan(waiting, [{ userId: 1, projectId: 1 }], { perUser: 2, perProject: 0 }).admit,
    [1],
  );
});

Deno.test("a user with fewer running exports goes first, whatever arrived before", () => {
  // user 1 asked for 5 and has 2 running; user 2 asks for 1 later
  const waiting = waitingOf([[1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [2, 1]]);
  const running = [{ userId: 1, projectId: 1 }, { userId: 1, projectId: 1 }];
  const plan = admissionPlan(waiting, running, { perUser: 2, perProject: 0 });
  assertEquals(plan.order[0], 6);
  assertEquals(plan.admit, [6]);
});

Deno.test("round-robin across users, FIFO within each, ties to the oldest", () => {
  const waiting = waitingOf([[1, 1], [1, 1], [1, 1], [2, 1], [2, 1], [3, 1]]);
  const plan = admissionPlan(waiting, [], { perUser: 0, perProject: 0 });
  // loads 0,0,0: users 1, 2, 3 by their oldest; then 1, 2; then 1
  assertEquals(plan.order, [1, 4, 6, 2, 5, 3]);
  assertEquals(plan.admit, plan.order); // unlimited: everyone at once
});

Deno.test("the project cap holds across users, skipped exports keep their place", () => {
  // project 1 capped at 2 with one running; project 2 free
  const waiting = waitingOf([[1, 1], [2, 1], [3, 1], [3, 2]]);
  const plan = admissionPlan(waiting, [{ userId: 9, projectId: 1 }], {
    perUser: 4,
    perProject: 2,
  });
  assertEquals(plan.order, [1, 2, 3, 4]);
  assertEquals(plan.admit, [1, 4]);
});

Deno.test("exports of deleted users share one group", () => {
  const waiting = waitingOf([[null, 1], [null, 1], [null, 1]]);
  assertEquals(admissionPlan(waiting, [], { perUser: 2, perProject: 0 }).admit, [1, 2]);
});

Deno.test("the order is a permutation of the waiting exports; after admitting, nothing more fits", () => {
  const waiting = waitingOf([[1, 1], [2, 2], [1, 1], [3, 1], [2, 2], [1, 3], [3, 3]]);
  const caps = { perUser: 1, perProject: 2 };
  const plan = admissionPlan(waiting, [], caps);
  assertEquals([...plan.order].sort((a, b) => a - b), waiting.map((w) => w.id));
  // admitting what the plan admits leaves the rest in the same relative order
  const admitted = new Set(plan.admit);
  const rest = waiting.filter((w) => !admitted.has(w.id));
  const running = waiting.filter((w) => admitted.has(w.id));
  const next = admissionPlan(rest, running, caps);
  assertEquals(next.admit, []);
  assertEquals(next.order, plan.order.filter((id) => !admitted.has(id)));
});
