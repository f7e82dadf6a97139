/* jwt: see jwt.h. The claims are read as nats-io/jwt v2 writes them:
 *   header  {"typ":"JWT","alg":"ed25519-nkey"}
 *   claims  {"jti","iat","iss","sub","name","exp","nbf","nats":{"type":"operator|account|user",
 *            "version":2, ...}}
 *   account nats: signing_keys (keys, or {"kind":"user_scope","key","template":{...}}),
 *                 exports [{subject,type,response_type,response_threshold,token_req}],
 *                 imports [{subject,account,type,to,local_subject}],
 *                 limits {mem_storage, disk_storage, ...}, revocations {user: unix}
 *   user nats:    pub/sub {allow,deny}, resp {max,ttl}, bearer_token, issuer_account,
 *                 src, times, allowed_connection_types
 * A signature covers "header.payload" and is checked with the issuer's public nkey. */
#define _GNU_SOURCE
#include "jwt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "nkeys.h"
#include "util.h"

typedef struct jacc {
    char pub[57];
    char name[128];
    cJSON *claims;            /* the whole claims document (owned) */
    char **signers;           /* plain signing keys */
    size_t nsigners;
    cJSON *scopes;            /* borrowed from claims: the signing_keys array */
    int64_t expires;
} jacc;

struct jwt_trust {
    char op[57];
    char **op_signers;
    size_t nop_signers;
    jacc *accs;
    size_t naccs;
    /* the ember_account view of the accounts (jwt_trust_new's *accs) */
    ember_account *eaccs;
    ember_export **eexp;
    ember_import **eimp;
    char **strs;              /* strings those point to */
    size_t nstrs, capstrs;
};

/* ------------------------------------------------------------------ decoding */

/* Split and check one JWT: the claims (parsed) when the signature verifies with the key
 * of its own "iss". NULL with the reason in why. */
static cJSON *jwt_decode(const char *tok, char *why, size_t cap)
{
    if (!tok) {
        snprintf(why, cap, "missing JWT");
        return NULL;
    }
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        snprintf(why, cap, "JWT is not three dot-separated parts");
        return NULL;
    }
    size_t hl = (size_t)(d1 - tok), pl = (size_t)(d2 - d1 - 1), sl = strlen(d2 + 1);
    if (hl > 4096 || pl > 1024 * 1024 || sl > 200) {
        snprintf(why, cap, "JWT too large");
        return NULL;
    }
    uint8_t *hbuf = malloc(hl + 1), *pbuf = malloc(pl + 1);
    uint8_t sig[100];
    long hn = hbuf ? nkey_b64_decode(tok, hl, hbuf, hl) : -1;
    long pn = pbuf ? nkey_b64_decode(d1 + 1, pl, pbuf, pl) : -1;
    long sn = nkey_b64_decode(d2 + 1, sl, sig, sizeof sig);
    cJSON *h = hn > 0 ? cJSON_ParseWithLength((const char *)hbuf, (size_t)hn) : NULL;
    cJSON *c = pn > 0 ? cJSON_ParseWithLength((const char *)pbuf, (size_t)pn) : NULL;
    free(hbuf);
    free(pbuf);
    const cJSON *alg = h ? cJSON_GetObjectItemCaseSensitive(h, "alg") : NULL;
    const cJSON *iss = c ? cJSON_GetObjectItemCaseSensitive(c, "iss") : NULL;
    const char *err = NULL;
    if (!h || !c || !cJSON_IsObject(c))
        err = "JWT is not base64url JSON";
    else if (!cJSON_IsString(alg) || (strcmp(alg->valuestring, "ed25519-nkey") != 0 &&
                                      strcmp(alg->valuestring, "ed25519") != 0))
        err = "unexpected JWT algorithm";
    else if (!cJSON_IsString(iss))
        err = "JWT has no issuer";
    else if (sn != 64 || nkey_verify(iss->valuestring, tok, (size_t)(d2 - tok), sig, 64) != 1)
        err = "JWT signature does not verify";
    cJSON_Delete(h);
    if (err) {
        snprintf(why, cap, "%s", err);
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static const char *cstr(const cJSON *o, const char *k)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t cnum(const cJSON *o, const char *k, int64_t def)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

static const cJSON *nats_of(const cJSON *c) { return cJSON_GetObjectItemCaseSensitive(c, "nats"); }

static bool type_is(const cJSON *c, const char *t)
{
    const char *x = cstr(nats_of(c), "type");
    return x && !strcmp(x, t);
}

/* A string from a file holding a JWT (or the JWT itself when it starts with "eyJ"). */
static char *read_jwt(const char *what)
{
    if (!strncmp(what, "eyJ", 3))
        return strdup(what);
    FILE *f = fopen(what, "r");
    if (!f)
        return NULL;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* the first token that looks like a JWT (files may carry comments or a creds frame) */
    char *p = strstr(buf, "eyJ");
    if (!p)
        return NULL;
    size_t l = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=");
    return strndup(p, l);
}

/* ------------------------------------------------------------------ trust */

static char *keep(jwt_trust *t, const char *s)
{
    if (!s)
        return NULL;
    if (t->nstrs == t->capstrs) {
        size_t nc = t->capstrs ? t->capstrs * 2 : 32;
        char **nv = realloc(t->strs, nc * sizeof *nv);
        if (!nv)
            return NULL;
        t->strs = nv;
        t->capstrs = nc;
    }
    char *d = strdup(s);
    if (d)
        t->strs[t->nstrs++] = d;
    return d;
}

void jwt_trust_free(jwt_trust *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nop_signers; i++)
        free(t->op_signers[i]);
    free(t->op_signers);
    for (size_t i = 0; i < t->naccs; i++) {
        cJSON_Delete(t->accs[i].claims);
        for (size_t k = 0; k < t->accs[i].nsigners; k++)
            free(t->accs[i].signers[k]);
        free(t->accs[i].signers);
        if (t->eexp)
            free(t->eexp[i]);
        if (t->eimp)
            free(t->eimp[i]);
    }
    free(t->accs);
    free(t->eaccs);
    free(t->eexp);
    free(t->eimp);
    for (size_t i = 0; i < t->nstrs; i++)
        free(t->strs[i]);
    free(t->strs);
    free(t);
}

static int add_key(char ***v, size_t *n, const char *k)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(k)))
        return -1;
    (*n)++;
    return 0;
}

static bool op_trusts(const jwt_trust *t, const char *iss)
{
    if (!strcmp(iss, t->op))
        return true;
    for (size_t i = 0; i < t->nop_signers; i++)
        if (!strcmp(iss, t->op_signers[i]))
            return true;
    return false;
}

static int fail(jwt_trust *t, int rc)
{
    jwt_trust_free(t);
    return rc;
}

/* The ember_account view of account a (index i): exports, imports, JetStream. */
static int account_view(jwt_trust *t, size_t i)
{
    jacc *a = &t->accs[i];
    ember_account *e = &t->eaccs[i];
    const cJSON *n = nats_of(a->claims);
    e->name = a->pub;
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(n, "limits");
    int64_t mem = cnum(lim, "mem_storage", 0), disk = cnum(lim, "disk_storage", 0);
    const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(n, "tiered_limits");
    const cJSON *r1 = tiers ? cJSON_GetObjectItemCaseSensitive(tiers, "R1") : NULL;
    if (r1) {
        mem = cnum(r1, "mem_storage", mem);
        disk = cnum(r1, "disk_storage", disk);
    }
    e->jetstream = mem != 0 || disk != 0;
    e->jetstream_max_memory = mem > 0 ? mem : 0;
    e->jetstream_max_store = disk > 0 ? disk : 0;
    const cJSON *exps = cJSON_GetObjectItemCaseSensitive(n, "exports");
    size_t ne = cJSON_IsArray(exps) ? (size_t)cJSON_GetArraySize(exps) : 0;
    t->eexp[i] = calloc(ne ? ne : 1, sizeof *t->eexp[i]);
    if (!t->eexp[i])
        return err_set(EMBER_ENOMEM, "out of memory");
    const cJSON *x;
    size_t k = 0;
    cJSON_ArrayForEach(x, exps)
    {
        const char *subj = cstr(x, "subject"), *type = cstr(x, "type");
        if (!subj || !type)
            continue;
        cJSON *tr = cJSON_GetObjectItemCaseSensitive(x, "token_req");
        if (cJSON_IsTrue(tr))
            continue; /* activation tokens are not supported: nobody may import it */
        ember_export *ex = &t->eexp[i][k++];
        ex->subject = keep(t, subj);
        ex->service = !strcmp(type, "service");
        const char *rt = cstr(x, "response_type");
        ex->response_type = !rt || !strcasecmp(rt, "Singleton") ? EMBER_RESPONSE_SINGLETON
                            : !strcasecmp(rt, "Stream")         ? EMBER_RESPONSE_STREAM
                                                                : EMBER_RESPONSE_CHUNKED;
        int64_t thr = cnum(x, "response_threshold", 0); /* nanoseconds */
        ex->response_threshold_ms = thr > 0 ? thr / 1000000 : 0;
        if (!ex->subject)
            return err_set(EMBER_ENOMEM, "out of memory");
    }
    e->exports = t->eexp[i];
    e->exports_count = k;
    const cJSON *imps = cJSON_GetObjectItemCaseSensitive(n, "imports");
    size_t ni = cJSON_IsArray(imps) ? (size_t)cJSON_GetArraySize(imps) : 0;
    t->eimp[i] = calloc(ni ? ni : 1, sizeof *t->eimp[i]);
    if (!t->eimp[i])
        return err_set(EMBER_ENOMEM, "out of memory");
    k = 0;
    cJSON_ArrayForEach(x, imps)
    {
        const char *subj = cstr(x, "subject"), *type = cstr(x, "type"), *acc = cstr(x, "account");
        if (!subj || !type || !acc)
            continue;
        if (cstr(x, "token")) /* an activation token: not supported */
            continue;
        ember_import *im = &t->eimp[i][k++];
        im->service = !strcmp(type, "service");
        im->account = keep(t, acc);
        im->subject = keep(t, subj);
        const char *local = cstr(x, "local_subject"), *to = cstr(x, "to");
        if (im->service)
            im->to = keep(t, local ? local : to);
        else if (local)
            im->to = keep(t, local);
        else if (to && *to)
            im->prefix = keep(t, to);
    }
    e->imports = t->eimp[i];
    e->imports_count = k;
    return 0;
}

int jwt_trust_new(jwt_trust **out, const ember_server_options *o, const ember_account **accs,
                  size_t *nacc)
{
    *out = NULL;
    *accs = NULL;
    *nacc = 0;
    if (!o->operator_jwt) {
        if (o->account_jwts_count)
            return err_set(EMBER_EINVAL, "account JWTs need an operator (operator_jwt)");
        return 0;
    }
    if (o->users_count || o->accounts_count || o->username || o->auth_token)
        return err_set(EMBER_EINVAL, "operator mode does not combine with users, accounts or "
                       "single-user authorization: users are JWTs signed by the accounts");
    if (o->account_jwts_count && !o->account_jwts)
        return err_set(EMBER_EINVAL, "account_jwts is NULL with account_jwts_count %zu",
                       o->account_jwts_count);
    jwt_trust *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(EMBER_ENOMEM, "out of memory");
    char why[200];
    char *opj = read_jwt(o->operator_jwt);
    if (!opj)
        return fail(t, err_set(EMBER_EINVAL, "error parsing operator JWT: could not read \"%s\"",
                               o->operator_jwt));
    cJSON *oc = jwt_decode(opj, why, sizeof why);
    free(opj);
    if (!oc)
        return fail(t, err_set(EMBER_EINVAL, "error parsing operator JWT: %s", why));
    const char *iss = cstr(oc, "iss"), *sub = cstr(oc, "sub");
    uint8_t pfx, raw[32];
    if (!type_is(oc, "operator") || !sub || strcmp(iss, sub) != 0 ||
        nkey_public_decode(sub, &pfx, raw) != 0 || pfx != NKEY_PREFIX_OPERATOR) {
        cJSON_Delete(oc);
        return fail(t, err_set(EMBER_EINVAL, "error parsing operator JWT: not a self-signed "
                               "operator JWT"));
    }
    snprintf(t->op, sizeof t->op, "%s", sub);
    const cJSON *sk;
    cJSON_ArrayForEach(sk, cJSON_GetObjectItemCaseSensitive(nats_of(oc), "signing_keys"))
        if (cJSON_IsString(sk) && add_key(&t->op_signers, &t->nop_signers, sk->valuestring)) {
            cJSON_Delete(oc);
            return fail(t, err_set(EMBER_ENOMEM, "out of memory"));
        }
    int64_t oexp = cnum(oc, "exp", 0);
    cJSON_Delete(oc);
    if (oexp > 0 && oexp < (int64_t)time(NULL))
        return fail(t, err_set(EMBER_EINVAL, "operator JWT has expired"));
    size_t n = o->account_jwts_count;
    t->accs = calloc(n ? n : 1, sizeof *t->accs);
    t->eaccs = calloc(n ? n : 1, sizeof *t->eaccs);
    t->eexp = calloc(n ? n : 1, sizeof *t->eexp);
    t->eimp = calloc(n ? n : 1, sizeof *t->eimp);
    if (!t->accs || !t->eaccs || !t->eexp || !t->eimp)
        return fail(t, err_set(EMBER_ENOMEM, "out of memory"));
    for (size_t i = 0; i < n; i++) {
        char *aj = o->account_jwts[i] ? read_jwt(o->account_jwts[i]) : NULL;
        cJSON *ac = aj ? jwt_decode(aj, why, sizeof why) : NULL;
        free(aj);
        if (!ac)
            return fail(t, err_set(EMBER_EINVAL, "account JWT %zu: %s", i,
                                   o->account_jwts[i] ? why : "missing"));
        jacc *a = &t->accs[t->naccs++];
        a->claims = ac;
        const char *asub = cstr(ac, "sub"), *aiss = cstr(ac, "iss");
        if (!type_is(ac, "account") || !asub || nkey_public_decode(asub, &pfx, raw) != 0 ||
            pfx != NKEY_PREFIX_ACCOUNT)
            return fail(t, err_set(EMBER_EINVAL, "account JWT %zu: not an account JWT", i));
        if (!op_trusts(t, aiss))
            return fail(t, err_set(EMBER_EINVAL, "account JWT %zu (%s): not signed by the "
                                   "trusted operator", i, asub));
        for (size_t k = 0; k + 1 < t->naccs; k++)
            if (!strcmp(t->accs[k].pub, asub))
                return fail(t, err_set(EMBER_EINVAL, "account JWT %zu: account %s given twice",
                                       i, asub));
        snprintf(a->pub, sizeof a->pub, "%s", asub);
        snprintf(a->name, sizeof a->name, "%s", cstr(ac, "name") ? cstr(ac, "name") : asub);
        a->expires = cnum(ac, "exp", 0);
        a->scopes = cJSON_GetObjectItemCaseSensitive(nats_of(ac), "signing_keys");
        cJSON_ArrayForEach(sk, a->scopes)
        {
            const char *k = cJSON_IsString(sk) ? sk->valuestring : cstr(sk, "key");
            if (k && add_key(&a->signers, &a->nsigners, k))
                return fail(t, err_set(EMBER_ENOMEM, "out of memory"));
        }
    }
    for (size_t i = 0; i < t->naccs; i++) {
        int rc = account_view(t, i);
        if (rc)
            return fail(t, rc);
    }
    *out = t;
    *accs = t->eaccs;
    *nacc = t->naccs;
    return 0;
}

/* ------------------------------------------------------------------ users */

void jwt_user_free(jwt_user *u)
{
    for (int i = 0; i < 4; i++) {
        free(u->strs[i]);
        u->strs[i] = NULL;
    }
}

static char *join_own(const cJSON *arr)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return NULL;
    size_t n = 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (cJSON_IsString(x)) n += strlen(x->valuestring) + 1;
    char *s = calloc(1, n);
    if (!s)
        return NULL;
    cJSON_ArrayForEach(x, arr) if (cJSON_IsString(x))
    {
        if (*s)
            strcat(s, ",");
        strcat(s, x->valuestring);
    }
    return s;
}

/* Permissions from a user claim (or a scope's template): pub/sub/resp. */
static void perms_of(jwt_user *u, const cJSON *p)
{
    const cJSON *pub = cJSON_GetObjectItemCaseSensitive(p, "pub");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "sub");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(p, "resp");
    u->strs[0] = join_own(cJSON_GetObjectItemCaseSensitive(pub, "allow"));
    u->strs[1] = join_own(cJSON_GetObjectItemCaseSensitive(pub, "deny"));
    u->strs[2] = join_own(cJSON_GetObjectItemCaseSensitive(sub, "allow"));
    u->strs[3] = join_own(cJSON_GetObjectItemCaseSensitive(sub, "deny"));
    u->perms.publish_allow = u->strs[0];
    u->perms.publish_deny = u->strs[1];
    u->perms.subscribe_allow = u->strs[2];
    u->perms.subscribe_deny = u->strs[3];
    if (cJSON_IsObject(resp)) {
        u->perms.allow_responses = true;
        int64_t max = cnum(resp, "max", 1);
        u->perms.responses_max = max > 0 && max < INT32_MAX ? (int32_t)max : 1;
        int64_t ttl = cnum(resp, "ttl", 0); /* nanoseconds */
        u->perms.responses_expires_ms = ttl > 0 ? ttl / 1000000 : 0;
    }
}

static bool nonempty(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && ((cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) ||
                 (cJSON_IsString(v) && *v->valuestring));
}

int jwt_user_check(const jwt_trust *t, const char *tok, const char *sig, const char *nonce,
                   int64_t now, jwt_user *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    cJSON *c = jwt_decode(tok, why, cap);
    if (!c)
        return -1;
    const cJSON *n = nats_of(c);
    const char *sub = cstr(c, "sub"), *iss = cstr(c, "iss"), *ia = cstr(n, "issuer_account");
    const char *acc_key = ia && *ia ? ia : iss;
    uint8_t pfx, raw[32];
    const jacc *a = NULL;
    int rc = -1;
    if (!type_is(c, "user") || !sub || nkey_public_decode(sub, &pfx, raw) != 0 ||
        pfx != NKEY_PREFIX_USER) {
        snprintf(why, cap, "not a user JWT");
        goto out;
    }
    for (size_t i = 0; i < t->naccs && !a; i++)
        if (!strcmp(t->accs[i].pub, acc_key))
            a = &t->accs[i];
    if (!a) {
        snprintf(why, cap, "Account JWT lookup error: account %s not found", acc_key);
        goto out;
    }
    /* the issuer: the account itself or one of its signing keys (maybe a scope) */
    const cJSON *scope = NULL;
    bool known = !strcmp(iss, a->pub);
    const cJSON *sk;
    cJSON_ArrayForEach(sk, a->scopes)
    {
        const char *k = cJSON_IsString(sk) ? sk->valuestring : cstr(sk, "key");
        if (!known && k && !strcmp(k, iss)) {
            known = true;
            if (cJSON_IsObject(sk))
                scope = sk;
        }
    }
    if (!known || (strcmp(iss, a->pub) != 0 && (!ia || strcmp(ia, a->pub) != 0))) {
        snprintf(why, cap, "User JWT issuer is not known");
        goto out;
    }
    int64_t exp = cnum(c, "exp", 0), nbf = cnum(c, "nbf", 0), iat = cnum(c, "iat", 0);
    if (exp > 0 && now >= exp) {
        snprintf(why, cap, "User JWT no longer valid: expired");
        goto out;
    }
    if (nbf > 0 && now < nbf) {
        snprintf(why, cap, "User JWT no longer valid: not yet valid");
        goto out;
    }
    if (a->expires > 0 && now >= a->expires) {
        snprintf(why, cap, "Account JWT has expired");
        goto out;
    }
    bool bearer = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n, "bearer_token"));
    if (!bearer) {
        uint8_t s[100];
        long sl = sig && nonce ? nkey_b64_decode(sig, strlen(sig), s, sizeof s) : -1;
        if (!sig) {
            snprintf(why, cap, "Signature missing");
            goto out;
        }
        if (sl != 64 || nkey_verify(sub, nonce, strlen(nonce), s, 64) != 1) {
            snprintf(why, cap, "Signature not verified");
            goto out;
        }
    }
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(nats_of(a->claims), "revocations");
    if (cJSON_IsObject(rev)) {
        int64_t at = cnum(rev, sub, -1), all = cnum(rev, "*", -1);
        if ((at >= 0 && iat <= at) || (all >= 0 && iat <= all)) {
            snprintf(why, cap, "User authentication revoked");
            goto out;
        }
    }
    /* restrictions Ember does not evaluate: refuse rather than ignore them */
    const cJSON *src = scope ? cJSON_GetObjectItemCaseSensitive(scope, "template") : n;
    if (nonempty(src, "src") || nonempty(src, "times")) {
        snprintf(why, cap, "User JWT src/times restrictions are not supported");
        goto out;
    }
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(src, "allowed_connection_types");
    if (cJSON_IsArray(types) && cJSON_GetArraySize(types) > 0) {
        bool std = false;
        const cJSON *x;
        cJSON_ArrayForEach(x, types) if (cJSON_IsString(x) && (!strcmp(x->valuestring, "STANDARD") ||
                                                               !strcmp(x->valuestring, "LEAFNODE")))
            std = true;
        if (!std) {
            snprintf(why, cap, "Connection type not allowed");
            goto out;
        }
    }
    perms_of(out, src);
    snprintf(out->pub, sizeof out->pub, "%s", sub);
    snprintf(out->account, sizeof out->account, "%s", a->pub);
    snprintf(out->name, sizeof out->name, "%s", cstr(c, "name") ? cstr(c, "name") : sub);
    out->expires = exp;
    rc = 0;
out:
    cJSON_Delete(c);
    return rc;
}
