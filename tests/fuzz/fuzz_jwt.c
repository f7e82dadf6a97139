/* fuzz_jwt: libFuzzer target for the JWT reader of operator mode (core/src/jwt.c:
 * jwt_trust_new, jwt_user_check).
 *
 * A trust is built once from an operator and an account minted here. Each input is then
 * used, by its first byte, as:
 *   0: a user JWT token as a client would send it (base64 parts, signature, header);
 *   1: the claims of a user JWT, correctly signed by the account, so that the claims
 *      reader (permissions, issuer, expiry, revocations, scopes) gets arbitrary JSON;
 *   2: the claims of an account JWT signed by the operator, given to jwt_trust_new with
 *      the operator (exports, imports, limits, signing keys).
 * Checks, besides ASan/UBSan: a result is 0 or -1 (EMBER_* for the trust), an accepted
 * user has a NUL-terminated public key and account of 56 characters, and the trust of
 * mode 2 frees cleanly.
 *
 *   (built by tests/fuzz/CMakeLists.txt with -DEMBER_BUILD_FUZZ=ON)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../interop/jwtmint.h"
#include "jwt.h"

static key op, acc, user;
static jwt_trust *trust;
static char *op_jwt;

/* The trust of our operator and one account JWT. */
static int trust_of(const char *aj, jwt_trust **t, const ember_account **accs, size_t *n)
{
    ember_server_options o;
    ember_server_options_init(&o);
    const char *list[1] = {aj};
    o.operator_jwt = op_jwt;
    o.account_jwts = list;
    o.account_jwts_count = 1;
    return jwt_trust_new(t, &o, accs, n);
}

static void setup(void)
{
    if (trust)
        return;
    new_key(&op, NKEY_PREFIX_OPERATOR);
    new_key(&acc, NKEY_PREFIX_ACCOUNT);
    new_key(&user, NKEY_PREFIX_USER);
    op_jwt = mint(claims(op.pub, op.pub, "OP", "operator"), &op);
    char *aj = mint(claims(op.pub, acc.pub, "A", "account"), &op);
    const ember_account *accs;
    size_t n;
    if (trust_of(aj, &trust, &accs, &n) != 0 || n != 1)
        abort();
    free(aj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    char why[256];
    if (mode == 0 || mode == 1) {
        char *tok;
        if (mode == 0) {
            tok = malloc(size + 1);
            memcpy(tok, data, size);
            tok[size] = 0;
        } else {
            tok = mint_raw(data, size, &acc);
        }
        jwt_user u;
        int rc = jwt_user_check(trust, tok, "AAAA", "nonce", (int64_t)time(NULL), &u, why, sizeof why);
        if (rc != 0 && rc != -1)
            abort();
        if (rc == 0 && (strlen(u.pub) != 56 || strlen(u.account) != 56))
            abort();
        jwt_user_free(&u);
        free(tok);
        return 0;
    }
    char *aj = mint_raw(data, size, &op);
    jwt_trust *t = NULL;
    const ember_account *accs;
    size_t n;
    int rc = trust_of(aj, &t, &accs, &n);
    if (rc == 0) {
        if (n != 1 || !accs || !accs[0].name)
            abort();
        for (size_t i = 0; i < accs[0].exports_count; i++)
            if (!accs[0].exports[i].subject)
                abort();
        for (size_t i = 0; i < accs[0].imports_count; i++)
            if (!accs[0].imports[i].subject || !accs[0].imports[i].account)
                abort();
    } else if (rc != EMBER_EINVAL && rc != EMBER_ENOMEM) {
        abort();
    }
    jwt_trust_free(t);
    free(aj);
    return 0;
}
