/** `deno task start`: the API and a worker as two processes, stopped together. */
const tasks = ["api", "worker"].map((task) =>
  new Deno.Command(Deno.execPath(), { args: ["task", task], stdout: "inherit", stderr: "inherit" })
    .spawn()
);
const stop = () => tasks.forEach((t) => t.kill("SIGTERM"));
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const statuses = await Promise.all(tasks.map((t) => t.status));
Deno.exit(statuses.every((s) => s.success) ? 0 : 1);
