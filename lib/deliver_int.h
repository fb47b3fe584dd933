/*
 * deliver_int.h — inside the blocking driver: what deliver.c (the
 * delivery, its sessions and sockets, delivery to a server) shares with
 * deliver_route.c (route mode: the route's host).
 */
#ifndef SMTPOUT_DELIVER_INT_H
#define SMTPOUT_DELIVER_INT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "recipient_int.h"
#include "smtpout/deliver.h"
#include "tls_info_int.h"

struct smtpout_attempt {
  char address[80];
  int plaintext_fallback;
  struct smtpout_tls_info tls;
  int auth_outcome;        /* enum smtpout_auth_outcome */
  char auth_mechanism[24]; /* "" when none was chosen */
  int has_error;
  char error[REPLY_TEXT_MAX + 160];
  char mx[256];
  /* Route mode only (hop_outcome -1 and dane_status -1 otherwise). */
  int hop_outcome;
  int requirement, source, dane_status, sts_mode;
  size_t tlsa_count;
  char *explain;       /* malloc'd; NULL to a server */
  char *tlsrpt_event;  /* malloc'd; NULL without an event */
  int tlsrpt_result;   /* enum tlsrpt_result (tls_int.h) */
};

struct slot {
  char *addr;
  int has_result;
  struct smtpout_result res;
};

struct smtpout_delivery {
  smtpout_config *config;
  char *host;
  uint16_t port;
  char *mx_name;
  char *helo;
  char *ca_file;
  int policy_override;
  int starttls;
  int allow_invalid_certs;
  uint32_t timeouts[SMTPOUT_TIMEOUT_COUNT]; /* 0: the configuration's */
  /* smtpout_delivery_set_auth(); the secret is wiped once run is over. */
  char *auth_mechs;
  char *auth_user;
  char *auth_secret;
  uint32_t auth_flags;
  int implicit_tls;
  int no_chunking;
  char *client_cert;
  char *client_key;
  smtpout_dsn *dsn; /* indexed as the recipients are added */
  char *sender;
  struct slot *rcpts;
  size_t nrcpts, rcpts_cap;
  const uint8_t *body;
  size_t body_len;
  int body_fd;
  uint32_t flags;     /* the host's */
  uint64_t wire_size; /* the scan's */
  uint32_t scan_flags;
  smtpout_on_trace_callback trace;
  void *trace_ud;
  smtpout_policy *policy;
  struct smtpout_attempt *attempts;
  size_t nattempts;
  int ran;

  /* Route mode (deliver_route.c): to a domain's MX hosts, or through a
   * relay of the configuration. */
  char *domain;          /* NULL: to a server, or through a relay */
  bool relay;            /* smtpout_delivery_set_relay() */
  char *relay_label;     /* NULL: [queue.outbound] relay */
  uint32_t route_flags;
  char *nameservers;     /* NULL: the configuration's */
  int dnssec_mode;       /* -1: the configuration's */
  smtpout_store_get_callback store_get;
  smtpout_store_put_callback store_put;
  void *store_ud;
  smtpout_tlsrpt_event_callback on_event;
  void *event_ud;
  int events_fd;         /* the events file, opened at the first event */
  uint32_t events_lost;
  smtpout_route *route;

  /* The attempt in progress. */
  uint64_t body_off;
  size_t *map;        /* session recipient index -> slot index */
  const char **names; /* the recipients (or domains) handed on */
};

/* Whether the delivery runs a route (a domain, or a relay) rather than
 * going to one server. */
static inline bool deliver_routed(const smtpout_delivery *d)
{
  return d->domain != NULL || d->relay;
}

/* The monotonic clock, in milliseconds. */
uint64_t deliver_now(void);

/* A result the driver decides itself: recipient `i` deferred or bounced
 * with `enhanced` and `text`; `scope` (enum verdict_scope) says whether
 * another address may still take it. */
void deliver_set_result(smtpout_delivery *d, size_t i, int status,
                        const char *enhanced, const char *text, int scope);

/* A recipient another connection may still help: never tried, or what the
 * last one said lets another address take it. */
bool deliver_wants_retry(const smtpout_delivery *d, size_t i);

/* Appends an attempt record to `address` ("IP:PORT"); NULL when out of
 * memory. */
struct smtpout_attempt *deliver_new_attempt(smtpout_delivery *d,
                                            const char *address);

/* Fills d->map and d->names with the recipients that still want a
 * connection; returns their number. */
size_t deliver_pending(smtpout_delivery *d);

/* Sets a new session up as the delivery says (EHLO name, trust anchors,
 * timeouts), submits the `n` pending recipients of d->names with the
 * delivery's message flags and `flags`, and asks for QUIT after them;
 * `plaintext_fallback` marks the retry without STARTTLS.  Returns 0 or an
 * error of the setters (the caller frees the session). */
int deliver_session_setup(smtpout_delivery *d, smtpout_session *s,
                          size_t n, int plaintext_fallback, uint32_t flags);

/* The callbacks every session of the delivery uses (read_body, on_result,
 * the trace): a new object, freed by the caller. */
int deliver_callbacks(smtpout_delivery *d, smtpout_callbacks **pcbs);

/* Connects to `sa` within `timeout_ms`.  Returns the socket, or -1 with
 * errno set. */
int deliver_connect(const struct sockaddr *sa, socklen_t salen, int family,
                    uint32_t timeout_ms);

/* Runs a started-to-be session over the connected socket `fd` until it is
 * done, and aborts it if it stopped without finishing. */
void deliver_run_session(smtpout_session *s, int fd);

/* Copies what a finished session says into its attempt: the TLS record,
 * the AUTH outcome and mechanism, and the close text when the connection
 * ended for a reason (then returns 1, else 0). */
int deliver_record_session(struct smtpout_attempt *a,
                           const smtpout_session *s);

/* The timeout in force for `which`: the delivery's own, else the
 * configuration's. */
uint32_t deliver_timeout(const smtpout_delivery *d, int which);

/* Route mode (deliver_route.c): runs the route of d->domain, connecting
 * to its hops unless `resolve_only`.  Returns 0 or an error of
 * smtpout_delivery_run() / smtpout_delivery_resolve(); *no_resolver says
 * the resolver could not be set up (the recipients are deferred, and
 * there is no route). */
int deliver_route_run(smtpout_delivery *d, bool resolve_only,
                      bool *no_resolver);

/* Frees what route mode keeps (the route, the events file). */
void deliver_route_free(smtpout_delivery *d);

#endif
