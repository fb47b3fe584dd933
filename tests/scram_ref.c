/*
 * scram_ref.c — see scram_ref.h.
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "base64_int.h"
#include "scram_ref.h"

int scram_ref_signatures(const char *password, const uint8_t *salt,
                         size_t salt_len, unsigned iter,
                         const char *auth_message, uint8_t proof[32],
                         uint8_t server_sig[32])
{
  uint8_t salted[32], client_key[32], stored_key[32], client_sig[32],
      server_key[32];
  gnutls_datum_t key = {(unsigned char *)password, (unsigned)strlen(password)};
  gnutls_datum_t s = {(unsigned char *)salt, (unsigned)salt_len};
  /* SaltedPassword := Hi(Normalize(password), salt, i) */
  if (gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &s, iter, salted, 32) < 0)
    return -1;
  /* ClientKey := HMAC(SaltedPassword, "Client Key"); StoredKey := H(it) */
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, salted, 32, "Client Key", 10,
                       client_key) < 0 ||
      gnutls_hash_fast(GNUTLS_DIG_SHA256, client_key, 32, stored_key) < 0)
    return -1;
  /* ClientSignature := HMAC(StoredKey, AuthMessage);
   * ClientProof := ClientKey XOR ClientSignature */
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, stored_key, 32, auth_message,
                       strlen(auth_message), client_sig) < 0)
    return -1;
  for (int i = 0; i < 32; i++)
    proof[i] = client_key[i] ^ client_sig[i];
  /* ServerKey := HMAC(SaltedPassword, "Server Key");
   * ServerSignature := HMAC(ServerKey, AuthMessage) */
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, salted, 32, "Server Key", 10,
                       server_key) < 0 ||
      gnutls_hmac_fast(GNUTLS_MAC_SHA256, server_key, 32, auth_message,
                       strlen(auth_message), server_sig) < 0)
    return -1;
  return 0;
}

static int refuse(struct scram_ref *s, const char *why)
{
  s->why = why;
  return -1;
}

/* Copies attribute `k`'s value from "k=value,..." at *p; advances *p past
 * the comma.  Returns 0 or -1. */
static int take_attr(const char **p, char k, char *out, size_t cap)
{
  const char *q = *p;
  if (q[0] != k || q[1] != '=')
    return -1;
  q += 2;
  size_t n = strcspn(q, ",");
  if (n >= cap)
    return -1;
  memcpy(out, q, n);
  out[n] = '\0';
  *p = q + n + (q[n] == ',');
  return 0;
}

/* saslname: "=2C" is ',' and "=3D" is '='; any other '=' is invalid. */
static int unescape_name(const char *in, char *out, size_t cap)
{
  size_t k = 0;
  for (const char *p = in; *p; p++) {
    if (k + 1 >= cap)
      return -1;
    if (*p == '=') {
      if (strncmp(p, "=2C", 3) == 0)
        out[k++] = ',';
      else if (strncmp(p, "=3D", 3) == 0)
        out[k++] = '=';
      else
        return -1;
      p += 2;
    } else {
      out[k++] = *p;
    }
  }
  out[k] = '\0';
  return 0;
}

int scram_ref_server_first(struct scram_ref *s, const char *client_first,
                           char out[SCRAM_REF_MSG])
{
  /* gs2-header = gs2-cbind-flag "," [authzid] "," */
  const char *c1 = strchr(client_first, ',');
  const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
  if (!c2 || (size_t)(c2 + 1 - client_first) >= sizeof(s->gs2_header))
    return refuse(s, "client-first has no gs2 header");
  if (c2 != c1 + 1)
    return refuse(s, "client-first names an authorisation identity");
  memcpy(s->gs2_header, client_first, (size_t)(c2 + 1 - client_first));
  s->gs2_header[c2 + 1 - client_first] = '\0';
  if (strcmp(s->gs2_header, "n,,") != 0 && strcmp(s->gs2_header, "y,,") != 0 &&
      strcmp(s->gs2_header, "p=tls-exporter,,") != 0 &&
      strcmp(s->gs2_header, "p=tls-unique,,") != 0)
    return refuse(s, "unknown gs2 channel binding flag");
  const char *bare = c2 + 1;
  if (strlen(bare) >= sizeof(s->client_first_bare))
    return refuse(s, "client-first too long");
  strcpy(s->client_first_bare, bare);
  char user[256];
  const char *p = bare;
  if (take_attr(&p, 'n', user, sizeof(user)) != 0 ||
      unescape_name(user, s->username, sizeof(s->username)) != 0)
    return refuse(s, "client-first has no valid n= attribute");
  if (take_attr(&p, 'r', s->client_nonce, sizeof(s->client_nonce)) != 0 ||
      !s->client_nonce[0])
    return refuse(s, "client-first has no r= attribute");
  char salt64[BASE64_LEN(32) + 1];
  salt64[base64_encode(s->salt, s->salt_len, salt64)] = '\0';
  int n = snprintf(out, SCRAM_REF_MSG, "r=%s%s,s=%s,i=%u", s->client_nonce,
                   s->server_nonce, salt64, s->iter);
  if (n < 0 || n >= SCRAM_REF_MSG)
    return refuse(s, "server-first too long");
  strcpy(s->server_first, out);
  return 0;
}

int scram_ref_server_final(struct scram_ref *s, const char *client_final,
                           char out[SCRAM_REF_MSG])
{
  char cbind64[256], nonce[512], proof64[128];
  const char *p = client_final;
  if (take_attr(&p, 'c', cbind64, sizeof(cbind64)) != 0 ||
      take_attr(&p, 'r', nonce, sizeof(nonce)) != 0)
    return refuse(s, "client-final lacks c= or r=");
  const char *proof_at = p;
  if (take_attr(&p, 'p', proof64, sizeof(proof64)) != 0 || *p)
    return refuse(s, "client-final lacks p= at its end");

  /* c= is base64(gs2-header [cbind-data]); the data only with "p=". */
  uint8_t want[256];
  size_t wn = strlen(s->gs2_header);
  memcpy(want, s->gs2_header, wn);
  if (s->gs2_header[0] == 'p') {
    if (!s->cb_data)
      return refuse(s, "channel binding asked for, none expected");
    memcpy(want + wn, s->cb_data, s->cb_len);
    wn += s->cb_len;
  }
  char want64[BASE64_LEN(256) + 1];
  want64[base64_encode(want, wn, want64)] = '\0';
  if (strcmp(cbind64, want64) != 0)
    return refuse(s, "channel binding (c=) does not match");

  char full_nonce[512];
  snprintf(full_nonce, sizeof(full_nonce), "%s%s", s->client_nonce,
           s->server_nonce);
  if (strcmp(nonce, full_nonce) != 0)
    return refuse(s, "client-final nonce is not the combined nonce");

  /* AuthMessage := client-first-message-bare + "," +
   *                server-first-message + "," +
   *                client-final-message-without-proof */
  char am[3 * SCRAM_REF_MSG];
  snprintf(am, sizeof(am), "%s,%s,%.*s", s->client_first_bare,
           s->server_first, (int)(proof_at - client_final - 1), client_final);
  uint8_t proof[32], sig[32], got[48];
  if (scram_ref_signatures(s->password, s->salt, s->salt_len, s->iter, am,
                           proof, sig) != 0)
    return refuse(s, "GnuTLS failed");
  if (strlen(proof64) != BASE64_LEN(32) ||
      base64_decode(proof64, strlen(proof64), got) != 32 ||
      memcmp(got, proof, 32) != 0)
    return refuse(s, "client proof does not verify (wrong password)");
  char sig64[BASE64_LEN(32) + 1];
  sig64[base64_encode(sig, 32, sig64)] = '\0';
  snprintf(out, SCRAM_REF_MSG, "v=%s", sig64);
  return 0;
}
