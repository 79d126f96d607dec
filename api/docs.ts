/**
 * `/api/v2/docs`: an interactive API reference (Swagger UI) for the OpenAPI document. Its
 * assets come from the `swagger-ui-dist` npm package and are served by the app itself, so the
 * page works without any CDN.
 */
import { Hono } from "hono";
import getAbsoluteFSPath from "swagger-ui-dist/absolute-path.js";
import { MAX_ECHO_CHARS, truncateText } from "../domain/echo.ts";
import { jsonError } from "./errors.ts";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
};

/** The HTML page: Swagger UI pointed at `specPath`, "Authorize" for the token. */
export function docsPage(specPath: string, assetsPath: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ami-exports API reference</title>
  <link rel="stylesheet" href="${assetsPath}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${assetsPath}/swagger-ui-bundle.js"></script>
  <script src="${assetsPath}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: ${JSON.stringify(specPath)},
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "BaseLayout",
    });
  </script>
</body>
</html>
`;
}

/** The docs router; mount it at `/api/v2/docs`. */
export function docsRoutes(specPath: string): Hono {
  const app = new Hono({ strict: false });
  const cache = new Map<string, Uint8Array>();
  app.get("/", (c) => c.html(docsPage(specPath, "/api/v2/docs/assets")));
  app.get("/assets/:name", async (c) => {
    const name = c.req.param("name");
    const type = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!type) return jsonError(c, 404, `no such asset: ${truncateText(name, MAX_ECHO_CHARS)}`);
    let bytes = cache.get(name);
    if (!bytes) {
      bytes = await Deno.readFile(`${getAbsoluteFSPath()}/${name}`);
      cache.set(name, bytes);
    }
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": type,
      "cache-control": "public, max-age=86400",
    });
  });
  return app;
}
