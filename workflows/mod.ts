/** The workflows the worker registers (its `workflowsPath`). */
export * from "./export_workflow.ts";
export * from "./delete_export_workflow.ts";
export * from "./housekeeping_workflow.ts";
export * from "./scheduled_export_workflow.ts";
export * from "./webhook_delivery_workflow.ts";
export * from "./email_delivery_workflow.ts";
