/**
 * `deno task cli temporal-setup`: registers the export search attributes
 * (workflows/search_attributes.ts) in the configured namespace. Idempotent: attributes that
 * exist with the right type are left alone; one that exists with another type is an error.
 * The dev server gets them at start (`--search-attribute`, cli/dev_services.ts); the worker
 * runs this at start too (best effort: real clusters may refuse it without admin rights).
 */
import type { Client } from "@temporalio/client";
import { encodeSearchAttributeIndexedValueType } from "@temporalio/common/lib/search-attributes.js";
import { EXPORT_SEARCH_ATTRIBUTES } from "../workflows/search_attributes.ts";

/** What {@link ensureSearchAttributes} did: names added and names already there. */
export interface SearchAttributeSetup {
  added: string[];
  present: string[];
}

/**
 * Adds the missing export search attributes to `namespace`. Throws when one exists with another
 * type (rename or remove it first: Temporal cannot change a type) or the server refuses.
 */
export async function ensureSearchAttributes(
  client: Client,
  namespace: string,
): Promise<SearchAttributeSetup> {
  const operator = client.connection.operatorService;
  const listed = await operator.listSearchAttributes({ namespace });
  const existing = { ...listed.systemAttributes, ...listed.customAttributes } as Record<
    string,
    number
  >;
  const added: string[] = [];
  const present: string[] = [];
  const missing: Record<string, number> = {};
  for (const key of EXPORT_SEARCH_ATTRIBUTES) {
    const want = encodeSearchAttributeIndexedValueType(key.type)!;
    const have = existing[key.name];
    if (have === undefined) {
      missing[key.name] = want;
      added.push(key.name);
    } else if (have !== want) {
      throw new Error(
        `search attribute ${key.name} exists in namespace ${namespace} with another type: ` +
          `${have} (want ${key.type})`,
      );
    } else {
      present.push(key.name);
    }
  }
  if (added.length > 0) {
    await operator.addSearchAttributes({ namespace, searchAttributes: missing as never });
  }
  return { added, present };
}
