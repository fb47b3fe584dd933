/*
 * sasl-pipe — smtpout's AUTH client (lib/sasl.c) over pipes, so that the
 * integration tests can run it against real servers (aiosmtpd, Postfix
 * with Dovecot) before the session uses it.  The test owns the connection
 * (and its TLS); this program only turns replies into command lines.
 *
 *   sasl-pipe MECHANISM USERNAME [SCRAM-ITERATION-MAX]
 *
 * stdin: the secret on the first line, then each reply line the server
 * sends during AUTH ("334 ...", "235 ...", "535 ...").
 * stdout, one line each:
 *   SEND <line>       a line to write to the server (CRLF not shown)
 *   TRACE <line>      the same line as a trace would show it (redacted)
 *   ERROR <text>      the client refused what the server sent
 *   DONE ok           235, and the exchange really ended
 *   DONE untrusted <text>   235 the client does not believe
 *   DONE refused <reply>    any other reply ends the exchange
 * Exit status 0 after DONE ok, 1 after any other DONE, 64 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl_int.h"

static char reply[16384];

static void send_line(const uint8_t *line, size_t len)
{
  char trace[128];
  sasl_redact(line, len, trace, sizeof(trace));
  printf("SEND %.*s\nTRACE %s\n", (int)(len - 2), (const char *)line,
         trace);
  fflush(stdout);
}

/* Reads one line without its CR LF; 0 at end of input. */
static int read_line(char *buf, size_t cap)
{
  if (!fgets(buf, (int)cap, stdin))
    return 0;
  buf[strcspn(buf, "\r\n")] = '\0';
  return 1;
}

int main(int argc, char **argv)
{
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: sasl-pipe MECHANISM USERNAME [ITER-MAX]\n");
    return 64;
  }
  static char secret[SASL_SECRET_MAX + 2];
  if (!read_line(secret, sizeof(secret))) {
    fprintf(stderr, "sasl-pipe: no secret on stdin\n");
    return 64;
  }
  struct sasl_params p = {
    .mech = sasl_mech_lookup(argv[1], strlen(argv[1])),
    .username = argv[2],
    .secret = secret,
    .scram_iter_max = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0,
  };
  struct sasl_client *c;
  int rv = sasl_client_new(&c, &p);
  explicit_bzero(secret, sizeof(secret));
  if (rv != 0) {
    fprintf(stderr, "sasl-pipe: cannot make a %s client: %d\n", argv[1], rv);
    return 64;
  }
  const uint8_t *line;
  size_t len;
  if (sasl_client_start(c, &line, &len) != 0) {
    printf("ERROR %s\nDONE refused (not started)\n", sasl_client_error(c));
    sasl_client_free(c);
    return 1;
  }
  send_line(line, len);
  int status = 1;
  while (read_line(reply, sizeof(reply))) {
    if (strncmp(reply, "334", 3) == 0 &&
        (reply[3] == ' ' || reply[3] == '\0')) {
      const char *text = reply[3] ? reply + 4 : "";
      if (sasl_client_step(c, text, strlen(text), &line, &len) != 0)
        printf("ERROR %s\n", sasl_client_error(c));
      send_line(line, len);
      continue;
    }
    if (strncmp(reply, "235", 3) == 0) {
      if (sasl_client_success(c) == 0) {
        printf("DONE ok\n");
        status = 0;
      } else {
        printf("DONE untrusted %s\n", sasl_client_error(c));
      }
    } else {
      printf("DONE refused %s%s%s\n", reply,
             sasl_client_server_error(c)[0] ? " / " : "",
             sasl_client_server_error(c));
    }
    break;
  }
  fflush(stdout);
  sasl_client_free(c);
  return status;
}
