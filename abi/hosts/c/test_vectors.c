/* The native C ABI (libpolicy_core_abi) decides the project's vectors as expected, refuses bad
 * input with error results, and reports decisions per second.
 *
 * usage: test_vectors CASES_DIR
 * CASES_DIR holds doc<N>.json and cases.tsv, written by `cargo xtask test` from
 * policy-core/tests/vectors: one line per case, "N \t outcome \t policy \t request", where policy
 * is `-` (not checked), `null` (none) or the deciding policy's id (else name). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_core.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
    return buf;
}

/* A result's JSON as a NUL-terminated copy; the result is freed. */
static char *take(uint32_t result) {
    if (result == 0) return NULL;
    size_t len = ea_result_len(result);
    char *out = malloc(len + 1);
    memcpy(out, ea_result_ptr(result), len);
    out[len] = 0;
    ea_result_free(result);
    return out;
}

static uint32_t engine_of(const char *compiled) {
    const char *at = strstr(compiled, "\"engine\":");
    return at ? (uint32_t)strtoul(at + 9, NULL, 10) : 0;
}

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s CASES_DIR\n", argv[0]); return 64; }
    CHECK(ea_abi_version() == 1, "ABI version %u", ea_abi_version());

    /* Bad input: error results, never a crash. */
    char *r = take(ea_compile((const uint8_t *)"\xff\xfe", 2));
    CHECK(r && strstr(r, "\"ok\":false") && strstr(r, "not UTF-8"), "bad UTF-8: %s", r);
    free(r);
    r = take(ea_compile(NULL, 12));
    CHECK(r && strstr(r, "null pointer"), "null: %s", r);
    free(r);
    r = take(ea_decide(987654321u, (const uint8_t *)"{}", 2));
    CHECK(r && strstr(r, "unknown_engine"), "unknown engine: %s", r);
    free(r);
    CHECK(ea_result_free(123456789u) == 0, "freeing an unknown result");

    char path[4096];
    snprintf(path, sizeof path, "%s/cases.tsv", argv[1]);
    char *cases = slurp(path, NULL);
    if (!cases) { fprintf(stderr, "cannot read %s\n", path); return 2; }
    uint32_t engines[1024] = {0};
    long n = 0;
    double seconds = 0;
    for (char *line = strtok(cases, "\n"); line; line = strtok(NULL, "\n")) {
        char *doc = line, *outcome = strchr(doc, '\t');
        if (!outcome) continue;
        *outcome++ = 0;
        char *policy = strchr(outcome, '\t');
        *policy++ = 0;
        char *request = strchr(policy, '\t');
        *request++ = 0;
        int d = atoi(doc);
        if (d < 0 || d >= 1024) continue;
        if (!engines[d]) {
            size_t len;
            snprintf(path, sizeof path, "%s/doc%d.json", argv[1], d);
            char *text = slurp(path, &len);
            char *compiled = take(ea_compile((const uint8_t *)text, len));
            engines[d] = engine_of(compiled);
            CHECK(engines[d], "doc%d does not compile: %s", d, compiled);
            free(text);
            free(compiled);
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint32_t result = ea_decide(engines[d], (const uint8_t *)request, strlen(request));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        seconds += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        char *verdict = take(result);
        char want[512];
        snprintf(want, sizeof want, "\"outcome\":\"%s\"", outcome);
        CHECK(verdict && strstr(verdict, want), "doc%d %s: expected %s, got %s", d, request, outcome, verdict);
        if (strcmp(policy, "-") != 0) {
            if (strcmp(policy, "null") == 0) {
                CHECK(strstr(verdict, "\"policy\":null"), "doc%d %s: expected no policy, got %s", d, request, verdict);
            } else {
                char id[512], name[512];
                snprintf(id, sizeof id, "\"id\":\"%s\"", policy);
                snprintf(name, sizeof name, "\"name\":\"%s\"", policy);
                CHECK(strstr(verdict, id) || strstr(verdict, name), "doc%d %s: expected policy %s, got %s", d, request, policy, verdict);
            }
        }
        free(verdict);
        n++;
    }
    for (int d = 0; d < 1024; d++) if (engines[d]) CHECK(ea_engine_free(engines[d]) == 1, "free doc%d", d);
    free(cases);
    printf("%ld cases, %d failures; %.0f decisions/s (JSON request in, JSON verdict out)\n",
           n, failures, seconds > 0 ? (double)n / seconds : 0.0);
    return failures == 0 && n >= 300 ? 0 : 1;
}
