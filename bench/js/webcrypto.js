// Benchmark baseline: "raw WebCrypto" from plain JavaScript in workerd. GET /webcrypto?n=N
// imports the key BENCH_JWK once and verifies the RS256 token BENCH_TOKEN N times with
// crypto.subtle, each verify awaited: the same loop as the Rust bench Worker's /webcrypto
// (bench/verify-worker). n=0 does everything but the verifications.
const MAX_N = 5000;

function base64url(text) {
  const bytes = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bytes, (c) => c.charCodeAt(0));
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/ready") return new Response("ready");
    if (url.pathname !== "/webcrypto") return new Response("unknown variant", { status: 404 });
    const n = Number(url.searchParams.get("n") ?? "0");
    if (!Number.isInteger(n) || n < 0 || n > MAX_N) {
      return new Response(`n must be 0..=${MAX_N}`, { status: 400 });
    }
    const token = env.BENCH_TOKEN;
    const dot = token.lastIndexOf(".");
    const message = new TextEncoder().encode(token.slice(0, dot));
    const signature = base64url(token.slice(dot + 1));
    const jwk = JSON.parse(env.BENCH_JWK);
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RS256", ext: true },
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const perf = performance.now();
    const date = Date.now();
    let valid = 0;
    for (let i = 0; i < n; i++) {
      if (await crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, signature, message)) valid++;
    }
    return Response.json({
      variant: "js-webcrypto",
      n,
      valid,
      perf_ms: performance.now() - perf,
      date_ms: Date.now() - date,
    });
  },
};
