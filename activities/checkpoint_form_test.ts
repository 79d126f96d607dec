import { assert, assertEquals } from "../tests/assert.ts";
import { CHECKPOINT_FORM, checkpointFormProblem } from "./types.ts";

Deno.test("a worker resumes checkpoints of its form, of lower forms and of none", () => {
  assertEquals(checkpointFormProblem({ form: CHECKPOINT_FORM, records: 10 }), undefined);
  assertEquals(checkpointFormProblem({ records: 10 }), undefined); // written before forms
  for (let form = 1; form < CHECKPOINT_FORM; form++) {
    assertEquals(checkpointFormProblem({ form }), undefined);
  }
});

Deno.test("a checkpoint of a newer or unreadable form is handed back, naming both forms", () => {
  const newer = checkpointFormProblem({ form: CHECKPOINT_FORM + 1 });
  assert(newer?.includes(`form ${CHECKPOINT_FORM + 1}, written by a newer worker`), newer);
  assert(newer?.includes(`forms up to ${CHECKPOINT_FORM}`), newer);
  for (const form of ["2", 1.5, null]) {
    assert(checkpointFormProblem({ form }) !== undefined, JSON.stringify(form));
  }
});
