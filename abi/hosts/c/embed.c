/* The C example of policy-core/README.md ("Embedding"), compiled and run by `cargo xtask test`:
 * the README's block is the region between the README markers (abi/tests/readme.rs checks that
 * they match). Prints the compile result and the verdict as JSON; the test checks "allow". */
/* README: begin c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy_core.h"

/* A result's JSON as a C string for the caller to free; frees the result. */
static char *take(uint32_t result) {
    size_t len = ea_result_len(result); /* 0 for result 0: memory exhausted */
    char *json = malloc(len + 1);
    if (json && len) memcpy(json, ea_result_ptr(result), len);
    if (json) json[len] = 0;
    ea_result_free(result);
    return json;
}

int main(void) {
    const char *doc = "{\"team_domain\": \"https://access.example.com\", \"apps\": [{"
        "\"id\": \"wiki\", \"name\": \"Wiki\", \"domain\": \"wiki.example.com\", \"aud\": \"a\","
        "\"policies\": [{\"name\": \"Staff\", \"decision\": \"allow\","
        "\"include\": [{\"email_domain\": {\"domain\": \"example.com\"}}]}]}]}";
    /* {"ok":true,"engine":1,"warnings":[]} or {"ok":false,"errors":[{path, line, …}]} */
    char *compiled = take(ea_compile((const uint8_t *)doc, strlen(doc)));
    const char *at = compiled ? strstr(compiled, "\"engine\":") : NULL;
    uint32_t engine = at ? (uint32_t)strtoul(at + 9, NULL, 10) : 0;
    printf("%s\n", compiled ? compiled : "out of memory");
    free(compiled);
    if (!engine) return 2;
    const char *req = "{\"app\": \"wiki.example.com/\", \"identity\": {\"email\": \"ada@example.com\"}}";
    char *verdict = take(ea_decide(engine, (const uint8_t *)req, strlen(req)));
    printf("%s\n", verdict ? verdict : "out of memory"); /* {"ok":true,"verdict":{"outcome":"allow",…}} */
    free(verdict);
    ea_engine_free(engine);
    return 0;
}
/* README: end */
