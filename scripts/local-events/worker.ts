// Local R2 event notifications: `PUT /images/<key>` stores the body in the input bucket and sends the
// message R2 would send for it to edgevit's queue; `GET /results/<key>` reads what the consumer wrote;
// every other request goes to edgevit itself, so the dev server answers the whole API on one port.

interface Env {
  IMAGES: R2Bucket;
  RESULTS: R2Bucket;
  EVENTS: Queue;
  EDGEVIT: Fetcher;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const key = decodeURIComponent(url.pathname.replace(/^\/(images|results)\//, ""));
    if (request.method === "PUT" && url.pathname.startsWith("/images/")) {
      // put() answers null only for a failed onlyIf condition, which this put does not set.
      const object = (await env.IMAGES.put(key, request.body))!;
      // The body R2 event notifications deliver for an object-create (PutObject) event.
      await env.EVENTS.send({
        account: "local",
        action: "PutObject",
        bucket: "edgevit-images",
        object: { key, size: object.size, eTag: object.etag },
        eventTime: object.uploaded.toISOString(),
      });
      return Response.json({ queued: key, etag: object.etag }, { status: 202 });
    }
    if (request.method === "GET" && url.pathname.startsWith("/results/")) {
      const object = await env.RESULTS.get(key);
      if (!object)
        return Response.json({ error: { code: "not_found", message: `no result ${key} yet` } }, { status: 404 });
      return new Response(object.body, { headers: { "content-type": object.httpMetadata?.contentType ?? "" } });
    }
    return env.EDGEVIT.fetch(request);
  },
} satisfies ExportedHandler<Env>;
