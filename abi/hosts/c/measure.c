/* Compile time, memory per engine and decisions per second of the native C ABI
 * (libpolicy_core_abi), on the workload of `cargo xtask bench` (which builds and runs this, and
 * never asserts timings). Prints one JSON object, like abi/hosts/wasmtime/examples/measure.rs.
 * Memory per engine is the growth of glibc's heap in use (mallinfo2) per compiled engine.
 *
 * usage: measure DOCUMENT REQUEST */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_core.h"

enum { ENGINES = 10, ROUNDS = 5000, SAMPLES = 5 };

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; *len = (size_t)n; }
    return buf;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The result's JSON, NUL-terminated; the result is freed. */
static char *take(uint32_t result) {
    if (result == 0) return NULL;
    size_t len = ea_result_len(result);
    char *out = malloc(len + 1);
    if (!out) return NULL;
    memcpy(out, ea_result_ptr(result), len);
    out[len] = 0;
    ea_result_free(result);
    return out;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s DOCUMENT REQUEST\n", argv[0]); return 64; }
    size_t doc_len, req_len;
    char *doc = slurp(argv[1], &doc_len), *req = slurp(argv[2], &req_len);
    if (!doc || !req) { fprintf(stderr, "cannot read the workload\n"); return 2; }

    uint32_t engines[ENGINES];
    double compile[ENGINES];
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < ENGINES; i++) {
        double t0 = now();
        char *compiled = take(ea_compile((const uint8_t *)doc, doc_len));
        compile[i] = now() - t0;
        const char *at = compiled ? strstr(compiled, "\"engine\":") : NULL;
        engines[i] = at ? (uint32_t)strtoul(at + 9, NULL, 10) : 0;
        if (!engines[i]) { fprintf(stderr, "the document does not load: %s\n", compiled); return 1; }
        free(compiled);
    }
    size_t per_engine = (mallinfo2().uordblks - before) / ENGINES;
    qsort(compile, ENGINES, sizeof compile[0], by_value);

    char *first = take(ea_decide(engines[0], (const uint8_t *)req, req_len));
    if (!first || !strstr(first, "\"outcome\":\"allow\"")) {
        fprintf(stderr, "the workload must be allowed: %s\n", first);
        return 1;
    }
    free(first);
    for (int i = 0; i < ROUNDS / 10; i++) free(take(ea_decide(engines[0], (const uint8_t *)req, req_len)));
    double samples[SAMPLES];
    for (int s = 0; s < SAMPLES; s++) {
        double t0 = now();
        for (int i = 0; i < ROUNDS; i++) free(take(ea_decide(engines[0], (const uint8_t *)req, req_len)));
        samples[s] = (now() - t0) / ROUNDS;
    }
    qsort(samples, SAMPLES, sizeof samples[0], by_value);
    double decide = samples[SAMPLES / 2];
    printf("{\"host\": \"C, native library (ABI v1, JSON verdict out)\", \"load_ms\": null, "
           "\"compile_ms\": %.3f, \"memory_per_engine_bytes\": %zu, \"decide_us\": %.3f, "
           "\"decisions_per_s\": %.0f}\n",
           compile[ENGINES / 2] * 1e3, per_engine, decide * 1e6, 1 / decide);
    for (int i = 0; i < ENGINES; i++) ea_engine_free(engines[i]);
    free(doc);
    free(req);
    return 0;
}
