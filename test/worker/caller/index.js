// A second Worker that uses edgevit as a Workers developer would: a service binding to its RPC
// entrypoint (EDGEVIT, entrypoint "Edgevit"), called with bytes, a stream or bad input. It answers
// the RPC result, or the error's message, as JSON so the test can look at both sides.

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const options = JSON.parse(url.searchParams.get("options") ?? "{}");
    try {
      let result;
      switch (url.pathname) {
        case "/classify":
          result = await env.EDGEVIT.classify(new Uint8Array(await request.arrayBuffer()), options);
          break;
        case "/classify-stream":
          result = await env.EDGEVIT.classify(request.body, options);
          break;
        case "/classify-abandon": {
          // A caller that hands over a stream, sends part of the image, then gives up on it.
          const bytes = new Uint8Array(await request.arrayBuffer());
          const { readable, writable } = new TransformStream();
          const writer = writable.getWriter();
          writer.write(bytes.slice(0, 1000));
          const call = env.EDGEVIT.classify(readable, options);
          await new Promise((resolve) => setTimeout(resolve, 20));
          await writer.abort(new Error("the caller gave up"));
          result = await call;
          break;
        }
        case "/classify-buffer":
          result = await env.EDGEVIT.classify(await request.arrayBuffer(), options);
          break;
        case "/embed":
          result = await env.EDGEVIT.embed(new Uint8Array(await request.arrayBuffer()), options);
          break;
        case "/hidden-states":
          result = await env.EDGEVIT.hiddenStates(new Uint8Array(await request.arrayBuffer()), options);
          break;
        case "/attentions":
          result = await env.EDGEVIT.attentions(new Uint8Array(await request.arrayBuffer()), options);
          break;
        case "/zero-shot":
          result = await env.EDGEVIT.zeroShot(new Uint8Array(await request.arrayBuffer()), options);
          break;
        case "/embed-text":
          result = await env.EDGEVIT.embedText(await request.json(), options);
          break;
        case "/search":
          result = await env.EDGEVIT.search(await request.json(), options);
          break;
        case "/tokenize":
          result = await env.EDGEVIT.tokenize(await request.json(), options);
          break;
        case "/image-tokens":
          result = await env.EDGEVIT.imageTokens(new Uint8Array(await request.arrayBuffer()), options);
          break;
        case "/models":
          result = await env.EDGEVIT.models();
          break;
        case "/fetch": {
          // The HTTP routes through the same binding: the path and query after /fetch, method, headers, body.
          const target = new URL(url.searchParams.get("path"), "http://edgevit.internal");
          const answer = await env.EDGEVIT.fetch(
            new Request(target, { method: request.method, headers: request.headers, body: request.body }),
          );
          return new Response(answer.body, answer);
        }
        default:
          return new Response("no such path", { status: 404 });
      }
      return Response.json({ result });
    } catch (error) {
      return Response.json({ error: { name: error.name, message: error.message, code: error.code ?? null } });
    }
  },
};
