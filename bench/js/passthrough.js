// Benchmark baseline: a pass-through Worker. Every request goes to ORIGIN_URL (same path and
// query, same method, headers and body), and the origin's response comes back unchanged.
// The gateway benchmark (bench/gateway) runs it under `wrangler dev` beside the gateway,
// in front of the same demo origin.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), request);
  },
};
