/*
 * faultsrv -- a scriptable ESMTP fault server for smtpout's integration tests.
 *
 * One process, one thread, one epoll loop, non-blocking sockets and
 * non-blocking GnuTLS: it serves any number of concurrent connections on
 * loopback, so it is both the hostile server of the TLS-policy and hardening
 * tests and a cheap STARTTLS sink for benchmarks.  It never forks and writes
 * nothing unless asked (--log, --spool).  tests/servers/faultsrv.md is the manual:
 * spool and log formats, semantics, recipes.
 *
 * Every option applies to every connection.  Where an option takes a PHASE it
 * applies to the reply given at that phase only:
 *
 *   PHASE   = NAME[@tls|@plain]   NAME is one of greeting, ehlo, helo,
 *             starttls, mail, rcpt, data (the reply to DATA), eod (the reply
 *             to the final dot), rset, noop, quit, other (any other command,
 *             and errors that belong to no command), or all.  "@tls" limits
 *             it to connections where TLS is active, "@plain" to the others.
 *   LINE    = reply text with C escapes (\r \n \t \\ \0 \xNN); CRLF is
 *             appended unless it ends in \r\n, so "250-a\r\n250 b" is a
 *             multi-line reply.
 *
 * Listening and output
 *   --listen HOST:PORT     default 127.0.0.1:0; prints "PORT <n>" on stdout
 *   --hostname NAME        name in the greeting and EHLO (mx.test.example)
 *   --spool DIR            write DIR/N.eml and DIR/N.json per accepted message
 *   --log FILE             one line per event
 *   --max-conns N          accept N connections, exit when all have closed
 *
 * ESMTP
 *   --cert FILE --key FILE enable STARTTLS with this certificate (chain) and key
 *   --no-starttls          do not advertise STARTTLS (refuse it with 502)
 *   --no-pipelining --no-8bitmime --no-smtputf8 --no-enhanced
 *   --size N               SIZE limit advertised and enforced (0: no limit)
 *   --ext [plain:|tls:]TEXT  an extra EHLO keyword line (repeatable)
 *   --chunking             offer CHUNKING and take BDAT (RFC 3030): a chunk
 *                          is content as it is; BDAT ... LAST ends it
 *   --reoffer-starttls     advertise STARTTLS again after TLS (a second
 *                          STARTTLS is a logged violation, answered 503)
 *
 * Scripted replies (LINE replaces the built-in reply; the server acts on the
 * code it chose: a 2xx to MAIL starts a transaction, a 3xx to DATA reads
 * content, a 220 to STARTTLS starts TLS, a 421 anywhere closes, ...)
 *   --reply PHASE=LINE     any phase
 *   --greeting LINE  --ehlo-reply LINE  --mail-reply LINE  --data-reply LINE
 *   --eod-reply LINE  --starttls-reply LINE      shorthands for --reply
 *   --rcpt-reply ADDR=LINE the reply to RCPT TO:<ADDR> (case-insensitive)
 *
 * STARTTLS faults
 *   --inject BYTES         send BYTES in the same write as the 220 to STARTTLS
 *   --handshake MODE       normal (default); alert, close, garbage: after the
 *                          220 read the ClientHello and answer it with a fatal
 *                          alert record / a FIN / non-TLS bytes (these need no
 *                          certificate); tls10, tls12: accept only that
 *                          version; nocipher: only the NULL cipher, which no
 *                          default client offers
 *   --priority STRING      GnuTLS priority string (overrides MODE's)
 *   --tickets              issue session tickets, so clients can resume
 *   --ocsp-response FILE   staple this OCSP response (DER) to the certificate
 *                          when the client asks (status_request)
 *   --drop-in-data N[@tls|@plain]  abandon the connection after N bytes of
 *                          message content (see --drop-mode)
 *   --drop-mode MODE       how a connection is abandoned (--close, --drop-in-
 *                          data): close (FIN, no close_notify; the default),
 *                          alert (fatal TLS alert, then FIN), rst (TCP RST)
 *
 * Hostile behaviour
 *   --stall PHASE          never answer; read and discard until the client goes
 *   --close PHASE          abandon the connection instead of answering
 *   --endless-multiline PHASE  answer with "CODE-..." lines forever
 *   --endless-line PHASE   answer with one line that never ends
 *   --pace MS              endless replies add 4 KiB every MS ms (default 10)
 *   --drip [PHASE:]MS      send the reply one byte every MS ms
 *   --nul[=PHASE]          put NUL and non-ASCII bytes in reply texts
 *   --bad-code [PHASE:]CODE  use CODE (any text: 600, 099, 25O, 2500) as the
 *                          code of every line of the reply
 *   --disagree[=PHASE]     end the reply with a line of a different code
 *   --unsolicited[=PHASE]  follow the reply, in the same write, with a reply
 *                          to nothing (default phase: greeting)
 *
 * Soak (randomised faults, reproducible from a seed; see faultsrv.md)
 *   --soak SEED            at each reply, at the start of each message's
 *                          content and at its end, inject a random fault:
 *                          421s, stalls, resets (before the dot, and after it
 *                          once the message is stored), TLS alerts in the
 *                          handshake and in a transaction, slow reads, 4xx/5xx
 *                          replies; the faults of connection N depend only on
 *                          SEED, N and what the client sends
 *   --soak-rate PERMILLE   chance of a fault at each of those points (10)
 *   --soak-tls PERCENT     connections offering STARTTLS (50; needs --cert)
 *   --soak-stall MS        how long a stall in message data lasts (2000)
 *   --events FILE          one JSON line per stored message, per soak fault
 *                          and per connection, for programs to check
 *   --id-header NAME       the header whose value names a stored message in
 *                          the events (Message-ID)
 *
 * Exits 0 on SIGTERM/SIGINT or after --max-conns, 64 on bad usage, 1 when it
 * cannot start.  Memory per connection is bounded: command lines longer than
 * CMD_LINE_MAX get a 500, unsent output stops the reading of commands at
 * OUT_HIGH_WATER and endless replies are generated only as they drain.
 */
/* accept4() and strcasestr() are GNU extensions. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- limits ---------------------------------------------------------------- */

enum {
    IN_BUF_SIZE = 8192,         /* bytes read from a connection at a time */
    /* RFC 5321 §4.5.3.1.4 allows 512 octets per command line; parameters
     * and SMTPUTF8 addresses make real ones longer, so allow some slack. */
    CMD_LINE_MAX = 2048,
    OUT_HIGH_WATER = 16384,     /* commands wait while this much output is unsent */
    OUT_MAX = 256 * 1024,       /* a connection that would queue more is dropped */
    ENDLESS_CHUNK = 4096,       /* bytes an endless reply adds per tick */
    MAX_RCPTS = 1000,           /* RFC 5321 §4.5.3.1.8 asks for at least 100 */
    LINGER_MS = 2000,           /* how long a closing connection waits for the peer's FIN */
    HEAD_MAX = 1024,            /* content kept to find --id-header in */
    SLOW_CHUNK = 512,           /* a slow read takes this many bytes ... */
    SLOW_MS = 10,               /* ... every this many ms */
    RUN_ROUNDS = 16,            /* read/process rounds per wake-up, for fairness */
};

/* ---- phases, faults and options ----------------------------------------------- */

enum phase {
    PH_GREETING, PH_EHLO, PH_HELO, PH_STARTTLS, PH_MAIL, PH_RCPT, PH_DATA,
    PH_EOD, PH_RSET, PH_NOOP, PH_QUIT, PH_OTHER, PH_COUNT
};

static const char *const phase_names[PH_COUNT] = {
    "greeting", "ehlo", "helo", "starttls", "mail", "rcpt", "data",
    "eod", "rset", "noop", "quit", "other",
};

/* A length-counted byte string: scripted replies may contain NUL. */
struct bytes {
    size_t len;
    char data[];
};

/* What the server does instead of its reply at one phase. */
enum action { ACT_REPLY, ACT_STALL, ACT_CLOSE, ACT_ENDLESS_MULTILINE, ACT_ENDLESS_LINE };

struct fault {
    enum action action;
    const struct bytes *reply;  /* scripted reply, NULL for the built-in one */
    const char *bad_code;       /* replaces the code of every line, or NULL */
    bool disagree;
    bool nul;
    bool unsolicited;
    int drip_ms;                /* 0: write the reply at once */
};

struct rcpt_reply {
    const char *addr;
    const struct bytes *reply;
};

enum handshake_mode { HS_NORMAL, HS_ALERT, HS_CLOSE, HS_GARBAGE, HS_TLS10, HS_TLS12, HS_NOCIPHER };
enum drop_mode { DROP_CLOSE, DROP_ALERT, DROP_RST };

/* The faults --soak injects.  A "-after-dot" fault comes after the message
 * was stored: the client cannot know it was, the possibly delivered case. */
enum soak_kind {
    SK_NONE,
    SK_421,                 /* a 421 reply, then FIN */
    SK_STALL,               /* no reply; input discarded until the client goes */
    SK_RESET,               /* TCP reset instead of the reply */
    SK_TLS_ALERT,           /* fatal TLS alert instead of the reply (TLS only) */
    SK_HANDSHAKE_ALERT,     /* 220 to STARTTLS, then an alert for the ClientHello */
    SK_450, SK_550,         /* refuse the recipient */
    SK_451, SK_554,         /* refuse the message at the end of data */
    SK_RESET_IN_DATA,       /* TCP reset within the first 256 bytes of content */
    SK_TLS_ALERT_IN_DATA,   /* fatal TLS alert there (TLS only) */
    SK_STALL_IN_DATA,       /* stop reading the content for --soak-stall ms */
    SK_SLOW_READ,           /* read the content SLOW_CHUNK bytes per SLOW_MS */
    SK_RESET_AFTER_DOT,     /* store the message, then reset instead of the 250 */
    SK_STALL_AFTER_DOT,     /* store it, then never answer */
    SK_TLS_ALERT_AFTER_DOT, /* store it, then a fatal TLS alert (TLS only) */
    SK_COUNT
};

static const char *const soak_names[SK_COUNT] = {
    "none", "421", "stall", "reset", "tls-alert", "handshake-alert", "450", "550",
    "451", "554", "reset-in-data", "tls-alert-in-data", "stall-in-data", "slow-read",
    "reset-after-dot", "stall-after-dot", "tls-alert-after-dot",
};

enum { MAX_EXT = 32, MAX_RCPT_REPLIES = 64 };

/* The command line, read once by main() and constant afterwards.  Arrays
 * indexed [2] are [plaintext, TLS active]. */
static struct options {
    const char *listen;
    const char *hostname;
    const char *spool;
    const char *log;
    const char *cert, *key;
    const char *ocsp_response;
    const char *priority;
    unsigned long max_conns;    /* 0: serve forever */
    bool starttls, pipelining, eightbit, smtputf8, enhanced, reoffer, tickets;
    bool chunking;
    unsigned long size;         /* 0: no limit */
    const char *ext[2][MAX_EXT];
    int n_ext[2];
    struct fault faults[PH_COUNT][2];
    struct rcpt_reply rcpt_replies[MAX_RCPT_REPLIES];
    int n_rcpt_replies;
    const struct bytes *inject;
    enum handshake_mode handshake;
    unsigned long drop_at[2];   /* 0: never */
    enum drop_mode drop_mode;
    int pace_ms;
    bool soak;
    uint64_t soak_seed;
    unsigned long soak_rate;    /* per mille */
    unsigned long soak_tls;     /* per cent */
    unsigned long soak_stall_ms;
    const char *events;
    const char *id_header;
} O = {
    .listen = "127.0.0.1:0",
    .hostname = "mx.test.example",
    .starttls = true, .pipelining = true, .eightbit = true, .smtputf8 = true,
    .enhanced = true,
    .size = 10485760,
    .pace_ms = 10,
    .soak_rate = 10,
    .soak_tls = 50,
    .soak_stall_ms = 2000,
    .id_header = "Message-ID",
};

/* ---- connections -------------------------------------------------------------- */

/* The state of a connection.  The command handlers and conn_run() are the
 * only code that changes it. */
enum conn_state {
    ST_CONNECTED,       /* greeted; waiting for EHLO/HELO */
    ST_NO_SERVICE,      /* non-2xx greeting: only QUIT is served (RFC 5321 §3.1) */
    ST_READY,           /* after EHLO/HELO, no transaction */
    ST_MAIL,            /* MAIL accepted, no recipient yet */
    ST_RCPT,            /* at least one recipient accepted */
    ST_DATA,            /* reading message content */
    ST_BDAT,            /* reading a BDAT chunk (--chunking) */
    ST_TLS_PENDING,     /* 220 to STARTTLS queued; the handshake starts once it is written */
    ST_TLS_HANDSHAKE,   /* GnuTLS handshake in progress */
    ST_FAKE_HANDSHAKE,  /* --handshake alert|close|garbage: waiting for the ClientHello */
    ST_STALLED,         /* answering nothing, discarding input */
    ST_ENDLESS,         /* sending an endless reply, discarding input */
    ST_CLOSING,         /* writing what is queued, then closing as close_how says */
    ST_LINGER,          /* our side shut; discarding input until the peer's FIN */
    ST_DEAD,            /* freed at the end of conn_run() */
};

enum close_how {
    CLOSE_QUIT,         /* after 221: close_notify over TLS, then FIN */
    CLOSE_FIN,          /* FIN, without close_notify */
    CLOSE_ALERT,        /* fatal TLS alert, then FIN */
    CLOSE_RST,          /* TCP reset, discarding unsent output */
};

/* Where the last byte of message content left us relative to line starts:
 * enough to undo dot-stuffing and find CRLF.CRLF (RFC 5321 §4.5.2). */
enum data_lex { DL_BOL, DL_DOT, DL_DOT_CR, DL_TEXT, DL_CR };

struct conn {
    unsigned long id;
    int fd;
    enum conn_state state;
    enum close_how close_how;
    char peer[64];
    struct conn *prev, *next;           /* all connections */

    unsigned char in[IN_BUF_SIZE];      /* unprocessed input from in_off to in_len */
    size_t in_off, in_len;
    bool skipping_line;                 /* discarding the rest of an over-long line */

    char *out;                          /* unsent output from out_off to out_len */
    size_t out_off, out_len, out_cap;
    bool tls_send_again;                /* GnuTLS holds a record it could not write yet */
    int drip_ms;                        /* the output is dripped at this pace */
    uint64_t drip_due;

    gnutls_session_t tls;
    bool tls_active;                    /* handshake done: the transport is TLS */
    char tls_version[16], tls_cipher[48], sni[256];

    uint64_t wake_at;                   /* 0: no timer, see conn_set_wake() */
    struct conn *timer_prev, *timer_next;
    uint64_t linger_until, endless_due;
    unsigned long endless_seq;
    char endless_code[12];
    bool endless_multiline;
    unsigned events;                    /* epoll interest registered */
    bool hangup;                        /* epoll reported HUP or ERR */
    bool peer_eof;                      /* the peer shut its side; it may still read */
    bool early_bytes_seen;              /* logged: bytes sent before the 220 to STARTTLS was out */
    bool offer_starttls;                /* STARTTLS is advertised on this connection */
    enum handshake_mode hs_mode;        /* --handshake, or a soak fault's */

    /* --soak: this connection's random stream and the faults it armed */
    uint64_t rng;
    unsigned long drop_at;              /* abandon after this much content (0: --drop-in-data's) */
    enum soak_kind drop_kind;           /* how: SK_RESET_IN_DATA or SK_TLS_ALERT_IN_DATA */
    bool slow_read;                     /* read the content in small pieces */
    uint64_t read_due;                  /* read no content before this time */
    const char *rcpt_arg;               /* the recipient being answered, for the events */

    /* the session and the transaction */
    bool ehlo;                          /* greeted with EHLO: extensions may be used */
    char *helo, *mail_from, *mail_params;
    bool mail_smtputf8;
    char **rcpts;
    int n_rcpts;

    /* the message content being received */
    enum data_lex dlex;
    FILE *spool_tmp;                    /* DIR/tmp-ID.eml, see spool_tmp_path() */
    unsigned long data_raw, data_size, bare_lf, bare_cr;
    bool data_8bit;
    char head[HEAD_MAX];                /* the first content bytes, for --id-header */
    size_t head_len;

    /* BDAT (--chunking): the chunk being read, whether it is the LAST,
     * whether the message is being taken in chunks, and whether this
     * chunk is read only to be refused (no transaction to take it). */
    unsigned long bdat_left, bdat_size;
    bool bdat_last, in_bdat, bdat_refused;
    enum conn_state bdat_after;         /* the state a refused chunk returns to */
};

/* The running server. */
static struct server {
    int ep, listen_fd;
    bool listen_paused;                 /* out of descriptors: accept later */
    FILE *log;
    FILE *events;                       /* --events */
    uint64_t start, now;                /* milliseconds, CLOCK_MONOTONIC */
    gnutls_certificate_credentials_t creds;
    gnutls_priority_t prio;
    gnutls_datum_t ticket_key;          /* --tickets */
    gnutls_datum_t ocsp_response;       /* --ocsp-response */
    unsigned long accepted, closed, next_msg;
    struct conn *conns;                 /* every open connection */
    struct conn *timers;                /* connections with a wake_at, unordered */
} S = { .listen_fd = -1, .next_msg = 1 };

static volatile sig_atomic_t stop_requested;

/* ---- small utilities ---------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

__attribute__((noreturn, format(printf, 2, 3)))
static void die(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("faultsrv: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL)
        die(1, "out of memory");
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes the C escapes of a command-line argument.  With AS_REPLY, CRLF is
 * appended unless the text already ends in it.  The result is never freed. */
static const struct bytes *unescape(const char *s, bool as_reply)
{
    size_t n = strlen(s), o = 0;
    struct bytes *b = xmalloc(sizeof *b + n + 2);

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            b->data[o++] = s[i];
            continue;
        }
        switch (s[++i]) {
        case 'r': b->data[o++] = '\r'; break;
        case 'n': b->data[o++] = '\n'; break;
        case 't': b->data[o++] = '\t'; break;
        case '0': b->data[o++] = '\0'; break;
        case 'x':
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                die(64, "bad \\x escape in \"%s\"", s);
            b->data[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            break;
        default: b->data[o++] = s[i]; break;    /* \\ and anything else */
        }
    }
    if (as_reply && (o < 2 || b->data[o - 2] != '\r' || b->data[o - 1] != '\n')) {
        b->data[o++] = '\r';
        b->data[o++] = '\n';
    }
    b->len = o;
    return b;
}

/* The code a reply starts with, or 0 when its first three bytes are not
 * digits: the server treats garbage it was told to send as a refusal. */
static int reply_code(const char *p, size_t n)
{
    if (n < 3)
        return 0;
    for (int i = 0; i < 3; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

static bool has_8bit(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* ---- the log ------------------------------------------------------------------ */

static const char *mode(const struct conn *c)
{
    return c->tls_active ? "tls" : "plain";
}

/* Starts a log line: seconds since start, then the connection. */
static void log_prefix(const struct conn *c)
{
    uint64_t t = now_ms() - S.start;

    fprintf(S.log, "%llu.%03llu ", (unsigned long long)(t / 1000), (unsigned long long)(t % 1000));
    if (c != NULL)
        fprintf(S.log, "#%lu ", c->id);
}

__attribute__((format(printf, 2, 3)))
static void logf_(const struct conn *c, const char *fmt, ...)
{
    va_list ap;

    if (S.log == NULL)
        return;
    log_prefix(c);
    va_start(ap, fmt);
    vfprintf(S.log, fmt, ap);
    va_end(ap);
    fputc('\n', S.log);
}

/* Writes N bytes with everything but printable ASCII escaped as \xNN. */
static void log_escaped(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            fputc(ch, S.log);
        else
            fprintf(S.log, "\\x%02x", ch);
    }
}

/* Logs protocol text as "DIR [mode] line", one log line per protocol line
 * (without its CRLF), so that one event is always one line of the log. */
static void log_text(const struct conn *c, const char *dir, const char *p, size_t n)
{
    if (S.log == NULL)
        return;
    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t len = lf != NULL ? (size_t)(lf - p) + 1 : n;
        size_t shown = len;
        if (lf != NULL && shown >= 2 && p[shown - 2] == '\r')
            shown -= 2;
        log_prefix(c);
        fprintf(S.log, "%s [%s] ", dir, mode(c));
        log_escaped(p, shown);
        fputc('\n', S.log);
        p += len;
        n -= len;
    }
}

/* Writes S as a JSON string.  Bytes of valid UTF-8 pass through; control
 * characters and bytes that are not UTF-8 become \u00XX, so the file stays
 * valid JSON whatever the client sent. */
static void json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    while (*p != '\0') {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4 : 0;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                len = 0;
        if (len > 1) {
            fwrite(p, 1, (size_t)len, f);
            p += len;
        } else if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p++);
        } else if (*p < 0x20 || *p >= 0x7f) {
            fprintf(f, "\\u%04x", *p++);
        } else {
            fputc(*p++, f);
        }
    }
    fputc('"', f);
}

__attribute__((format(printf, 2, 3)))
static void violation(const struct conn *c, const char *fmt, ...)
{
    va_list ap;
    char msg[256];

    if (S.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    logf_(c, "! violation [%s] %s", mode(c), msg);
}

/* ---- timers ------------------------------------------------------------------- */

/* Timers serve the hostile modes (drip, endless, linger) and the fairness
 * yield, so few connections have one at a time: an unordered list that the
 * loop scans is simpler than a heap and costs nothing when it is empty. */
static void conn_set_wake(struct conn *c, uint64_t at)
{
    bool listed = c->wake_at != 0;

    c->wake_at = at;
    if (at != 0 && !listed) {
        c->timer_prev = NULL;
        c->timer_next = S.timers;
        if (S.timers != NULL)
            S.timers->timer_prev = c;
        S.timers = c;
    } else if (at == 0 && listed) {
        if (c->timer_prev != NULL)
            c->timer_prev->timer_next = c->timer_next;
        else
            S.timers = c->timer_next;
        if (c->timer_next != NULL)
            c->timer_next->timer_prev = c->timer_prev;
    }
}

/* ---- output ------------------------------------------------------------------- */

/* Output not yet written.  While tls_send_again is set, GnuTLS holds an
 * encrypted copy of the first bytes of it: they stay counted until the
 * record is out. */
static size_t out_pending(const struct conn *c)
{
    return c->out_len - c->out_off;
}

static void conn_fail(struct conn *c, const char *why)
{
    logf_(c, "* drop: %s", why);
    c->state = ST_DEAD;
}

static void conn_close_as(struct conn *c, enum close_how how)
{
    c->state = ST_CLOSING;
    c->close_how = how;
}

/* Queues raw bytes.  Backpressure (OUT_HIGH_WATER) keeps the queue short;
 * OUT_MAX only catches a bug or an absurd scripted reply. */
static void out_raw(struct conn *c, const void *p, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > OUT_MAX) {
        conn_fail(c, "output cap exceeded");
        return;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < c->out_len + n)
            cap *= 2;
        char *q = realloc(c->out, cap);
        if (q == NULL) {
            conn_fail(c, "out of memory");
            return;
        }
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* Applies --bad-code, --disagree and --nul to the reply P (N bytes).
 * Returns a malloc'ed copy, its length in *OUT_N. */
static char *mangle(const struct fault *f, const char *p, size_t n, size_t *out_n)
{
    static const char junk[] = " [nul:\0] [8bit:\xff\x80\xc3\xa9]";
    size_t lines = 1, o = 0;
    size_t bad_len = f->bad_code != NULL ? strlen(f->bad_code) : 0;
    int code = reply_code(p, n);

    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    char *dst = xmalloc(n + lines * (bad_len + sizeof junk + 3) + 64);

    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t len = lf != NULL ? (size_t)(lf - p) + 1 : n;
        size_t body = len;                      /* the line without CRLF */
        if (body > 0 && p[body - 1] == '\n')
            body--;
        if (body > 0 && p[body - 1] == '\r')
            body--;
        size_t code_len = 0;                    /* the code precedes ' ' or '-' */
        while (code_len < body && code_len < 3 && p[code_len] != ' ' && p[code_len] != '-')
            code_len++;

        if (f->bad_code != NULL) {
            memcpy(dst + o, f->bad_code, bad_len);
            o += bad_len;
        } else {
            memcpy(dst + o, p, code_len);
            o += code_len;
        }
        const char *text = p + code_len;
        size_t rest = body - code_len;
        if (len == n && f->disagree && rest > 0 && text[0] == ' ') {
            dst[o++] = '-';                     /* the last line now says "more follows" */
            text++;
            rest--;
        }
        memcpy(dst + o, text, rest);
        o += rest;
        if (f->nul) {
            memcpy(dst + o, junk, sizeof junk - 1);
            o += sizeof junk - 1;
        }
        memcpy(dst + o, "\r\n", 2);
        o += 2;
        p += len;
        n -= len;
    }
    if (f->disagree) {
        /* RFC 5321 §4.2.1: all lines of a reply carry the same code. */
        const char *other = code / 100 == 2 || code / 100 == 3 ? "550" : "250";
        o += (size_t)sprintf(dst + o, "%s disagreeing code\r\n", other);
    }
    *out_n = o;
    return dst;
}

/* ---- soak: random faults ------------------------------------------------------------- */

static const char reply_421[] = "421 4.3.2 soak: service shutting down\r\n";

/* splitmix64.  A connection's stream starts from --soak SEED and its number
 * alone, so its faults depend on nothing else but what the client sends. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static unsigned long rng_below(struct conn *c, unsigned long n)
{
    c->rng += 0x9e3779b97f4a7c15u;
    return (unsigned long)(mix64(c->rng) % n);
}

/* Where each kind may strike; SK_NONE ends a list.  The content of a
 * message has its own list, and so does its end (end_of_data()). */
static const enum soak_kind soak_at[PH_COUNT][8] = {
    [PH_GREETING] = { SK_421, SK_STALL, SK_RESET },
    [PH_EHLO] = { SK_421, SK_STALL, SK_RESET, SK_TLS_ALERT },
    [PH_HELO] = { SK_421, SK_STALL, SK_RESET, SK_TLS_ALERT },
    [PH_STARTTLS] = { SK_421, SK_STALL, SK_RESET, SK_HANDSHAKE_ALERT },
    [PH_MAIL] = { SK_421, SK_STALL, SK_RESET, SK_TLS_ALERT },
    [PH_RCPT] = { SK_421, SK_STALL, SK_RESET, SK_TLS_ALERT, SK_450, SK_550 },
    [PH_DATA] = { SK_421, SK_STALL, SK_RESET, SK_TLS_ALERT },
    [PH_EOD] = { SK_421, SK_451, SK_554, SK_RESET_AFTER_DOT, SK_STALL_AFTER_DOT,
                 SK_TLS_ALERT_AFTER_DOT },
    [PH_QUIT] = { SK_STALL, SK_RESET },
};
static const enum soak_kind soak_in_content[] = {
    SK_RESET_IN_DATA, SK_TLS_ALERT_IN_DATA, SK_STALL_IN_DATA, SK_SLOW_READ, SK_NONE,
};

static bool needs_tls(enum soak_kind k)
{
    return k == SK_TLS_ALERT || k == SK_TLS_ALERT_IN_DATA || k == SK_TLS_ALERT_AFTER_DOT;
}

/* Draws whether to strike now (--soak-rate) and with which of KINDS, those
 * a plaintext connection cannot take left out.  Two draws every time, so
 * that the stream does not depend on the outcome. */
static enum soak_kind soak_draw(struct conn *c, const enum soak_kind *kinds)
{
    enum soak_kind ok[SK_COUNT];
    size_t n = 0;

    if (!O.soak || *kinds == SK_NONE)
        return SK_NONE;
    bool hit = rng_below(c, 1000) < O.soak_rate;
    unsigned long pick = rng_below(c, 720720);     /* a multiple of 1..16 */
    for (; *kinds != SK_NONE; kinds++)
        if (!needs_tls(*kinds) || c->tls_active)
            ok[n++] = *kinds;
    return hit && n > 0 ? ok[pick % n] : SK_NONE;
}

/* Starts a line of the events log (--events): one JSON object per line. */
static void event_start(const char *event)
{
    uint64_t t = now_ms() - S.start;

    fprintf(S.events, "{\"t\": %llu.%03llu, \"event\": \"%s\"", (unsigned long long)(t / 1000),
            (unsigned long long)(t % 1000), event);
}

/* Logs an injected fault, with the transaction it struck: its sender
 * names the client's attempt, the recipient the one being answered. */
static void soak_event(const struct conn *c, enum soak_kind k, const char *where)
{
    logf_(c, "* fault: soak %s at %s", soak_names[k], where);
    if (S.events == NULL)
        return;
    event_start("fault");
    fprintf(S.events, ", \"conn\": %lu, \"kind\": \"%s\", \"phase\": \"%s\", \"tls\": %s, "
            "\"from\": ", c->id, soak_names[k], where, c->tls_active ? "true" : "false");
    json_string(S.events, c->mail_from);
    fputs(", \"rcpt\": ", S.events);
    json_string(S.events, c->rcpt_arg);
    fputs("}\n", S.events);
}

/* --soak, at the reply of phase PH (but the end of data's, see soak_eod()):
 * may replace the reply *P (*N bytes) with a refusal, arm a failed
 * handshake, or replace the answer altogether with a stall or a drop.
 * Returns true in that last case: nothing is to be answered. */
static bool soak_reply(struct conn *c, enum phase ph, const char **p, size_t *n)
{
    static const char r450[] = "450 4.2.1 soak: mailbox busy\r\n";
    static const char r550[] = "550 5.1.1 soak: no such mailbox\r\n";
    enum soak_kind k = soak_draw(c, soak_at[ph]);

    switch (k) {
    case SK_NONE:
        return false;
    case SK_HANDSHAKE_ALERT:
        if (reply_code(*p, *n) != 220)
            return false;       /* no handshake follows this reply */
        c->hs_mode = HS_ALERT;
        break;
    case SK_421:
        *p = reply_421;
        *n = sizeof reply_421 - 1;
        break;
    case SK_450:
        *p = r450;
        *n = sizeof r450 - 1;
        break;
    case SK_550:
        *p = r550;
        *n = sizeof r550 - 1;
        break;
    case SK_STALL:
        c->state = ST_STALLED;
        break;
    case SK_RESET:
        conn_close_as(c, CLOSE_RST);
        break;
    case SK_TLS_ALERT:
        conn_close_as(c, CLOSE_ALERT);
        break;
    default:
        break;
    }
    soak_event(c, k, phase_names[ph]);
    return k == SK_STALL || k == SK_RESET || k == SK_TLS_ALERT;
}

/* --soak, as the content of a message begins. */
static void soak_content(struct conn *c)
{
    enum soak_kind k = soak_draw(c, soak_in_content);

    switch (k) {
    case SK_RESET_IN_DATA:
    case SK_TLS_ALERT_IN_DATA:
        /* Logged when it strikes (next_data()): the content is longer than
         * 256 bytes, but a client could end it sooner. */
        c->drop_at = 1 + rng_below(c, 256);
        c->drop_kind = k;
        return;
    case SK_STALL_IN_DATA:
        c->read_due = S.now + O.soak_stall_ms;
        break;
    case SK_SLOW_READ:
        c->slow_read = true;
        break;
    default:
        return;
    }
    soak_event(c, k, "content");
}

/* ---- abandoning a connection --------------------------------------------------- */

/* Leaves the connection the way --drop-mode says (--close, --drop-in-data). */
static void conn_abandon(struct conn *c, const char *why)
{
    static const enum close_how how[] = {
        [DROP_CLOSE] = CLOSE_FIN, [DROP_ALERT] = CLOSE_ALERT, [DROP_RST] = CLOSE_RST,
    };
    static const char *const names[] = {
        [DROP_CLOSE] = "close", [DROP_ALERT] = "alert", [DROP_RST] = "rst",
    };

    logf_(c, "* fault: abandon connection %s (%s)", why, names[O.drop_mode]);
    conn_close_as(c, how[O.drop_mode]);
}

/* ---- replies ------------------------------------------------------------------ */

/* Sends P (N bytes) as the reply at phase PH, or does what the fault table
 * says instead.  Returns the code the server meant, which decides its next
 * state (--bad-code and friends only change the wire; a scripted reply
 * without a numeric code counts as 0, a refusal), or -1 when the connection
 * did not answer or is closing: the caller must then change nothing. */
static int answer_bytes(struct conn *c, enum phase ph, const char *p, size_t n)
{
    const struct fault *f = &O.faults[ph][c->tls_active];

    if (ph != PH_EOD && soak_reply(c, ph, &p, &n))
        return -1;
    int code = reply_code(p, n);

    switch (f->action) {
    case ACT_STALL:
        logf_(c, "* fault: stall at %s", phase_names[ph]);
        c->state = ST_STALLED;
        return -1;
    case ACT_CLOSE: {
        char why[32];
        snprintf(why, sizeof why, "at %s", phase_names[ph]);
        conn_abandon(c, why);
        return -1;
    }
    case ACT_ENDLESS_MULTILINE:
    case ACT_ENDLESS_LINE:
        c->endless_multiline = f->action == ACT_ENDLESS_MULTILINE;
        logf_(c, "* fault: endless %s reply at %s",
              c->endless_multiline ? "multi-line" : "single-line", phase_names[ph]);
        snprintf(c->endless_code, sizeof c->endless_code, "%03d", code > 0 ? code : 250);
        c->endless_seq = 0;
        c->endless_due = S.now;
        c->state = ST_ENDLESS;
        return -1;
    case ACT_REPLY:
        break;
    }

    if (f->bad_code != NULL || f->disagree || f->nul) {
        size_t mn;
        char *m = mangle(f, p, n, &mn);
        log_text(c, "S>", m, mn);
        out_raw(c, m, mn);
        free(m);
    } else {
        log_text(c, "S>", p, n);
        out_raw(c, p, n);
    }
    if (f->unsolicited) {
        static const char extra[] = "250 2.0.0 unsolicited reply\r\n";
        logf_(c, "* fault: unsolicited reply after the %s reply", phase_names[ph]);
        log_text(c, "S>", extra, sizeof extra - 1);
        out_raw(c, extra, sizeof extra - 1);
    }
    if (f->drip_ms > c->drip_ms) {
        c->drip_ms = f->drip_ms;
        c->drip_due = S.now;
    }
    if (c->state == ST_DEAD)
        return -1;
    if (code == 421) {
        /* RFC 5321 §3.8: 421 means the server closes the channel. */
        conn_close_as(c, CLOSE_FIN);
        return -1;
    }
    return code;
}

/* Answers at phase PH with the scripted reply if there is one, else with the
 * built-in reply: CODE, the enhanced code ENH unless --no-enhanced or NULL
 * (RFC 2034 §4), and the text. */
__attribute__((format(printf, 5, 6)))
static int reply(struct conn *c, enum phase ph, const char *code, const char *enh,
                 const char *fmt, ...)
{
    const struct bytes *scripted = O.faults[ph][c->tls_active].reply;
    char buf[1024];
    va_list ap;
    int n;

    if (scripted != NULL)
        return answer_bytes(c, ph, scripted->data, scripted->len);
    if (O.enhanced && enh != NULL)
        n = snprintf(buf, sizeof buf, "%s %s ", code, enh);
    else
        n = snprintf(buf, sizeof buf, "%s ", code);
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 2, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof buf - 3)
        n = (int)sizeof buf - 3;
    memcpy(buf + n, "\r\n", 3);
    return answer_bytes(c, ph, buf, (size_t)n + 2);
}

/* ---- the transaction and the spool ---------------------------------------------- */

/* Where a connection's message content goes until it is accepted. */
static void spool_tmp_path(const struct conn *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s/tmp-%lu.eml", O.spool, c->id);
}

static void spool_discard(struct conn *c)
{
    char path[4096];

    if (c->spool_tmp == NULL)
        return;
    fclose(c->spool_tmp);
    c->spool_tmp = NULL;
    spool_tmp_path(c, path, sizeof path);
    unlink(path);
}

static void transaction_reset(struct conn *c)
{
    free(c->mail_from);
    free(c->mail_params);
    c->mail_from = c->mail_params = NULL;
    c->mail_smtputf8 = false;
    for (int i = 0; i < c->n_rcpts; i++)
        free(c->rcpts[i]);
    free(c->rcpts);
    c->rcpts = NULL;
    c->n_rcpts = 0;
    c->drop_at = 0;
    c->slow_read = false;
    c->read_due = 0;
    c->head_len = 0;
    c->in_bdat = false;
    spool_discard(c);
}

/* Moves the received message to DIR/N.eml and writes DIR/N.json last, through
 * a rename, so that a reader who sees N.json sees both files complete. */
static void spool_commit(struct conn *c, unsigned long n)
{
    char eml[4096], json[4096], tmp[4096], content[4096];
    FILE *f;

    fclose(c->spool_tmp);
    c->spool_tmp = NULL;
    spool_tmp_path(c, content, sizeof content);
    snprintf(eml, sizeof eml, "%s/%lu.eml", O.spool, n);
    snprintf(json, sizeof json, "%s/%lu.json", O.spool, n);
    snprintf(tmp, sizeof tmp, "%s/tmp-%lu.json", O.spool, c->id);
    if (rename(content, eml) != 0 || (f = fopen(tmp, "w")) == NULL) {
        logf_(c, "* spool error for message %lu: %s", n, strerror(errno));
        return;
    }
    fputs("{\"mail_from\": ", f);
    json_string(f, c->mail_from);
    fputs(", \"rcpt_to\": [", f);
    for (int i = 0; i < c->n_rcpts; i++) {
        if (i > 0)
            fputs(", ", f);
        json_string(f, c->rcpts[i]);
    }
    fprintf(f, "], \"tls\": %s, \"tls_version\": ", c->tls_active ? "true" : "false");
    json_string(f, c->tls_active ? c->tls_version : NULL);
    fputs(", \"tls_cipher\": ", f);
    json_string(f, c->tls_active ? c->tls_cipher : NULL);
    fputs(", \"sni\": ", f);
    json_string(f, c->tls_active && c->sni[0] != '\0' ? c->sni : NULL);
    fprintf(f, ", \"connection\": %lu, \"message\": %lu, \"size\": %lu, ", c->id, n, c->data_size);
    fputs("\"helo\": ", f);
    json_string(f, c->helo);
    fputs(", \"mail_params\": ", f);
    json_string(f, c->mail_params);
    fprintf(f, ", \"bare_lf\": %lu, \"bare_cr\": %lu, \"eight_bit\": %s}\n",
            c->bare_lf, c->bare_cr, c->data_8bit ? "true" : "false");
    if (fclose(f) != 0 || rename(tmp, json) != 0)
        logf_(c, "* spool error for message %lu: %s", n, strerror(errno));
}

/* ---- commands ----------------------------------------------------------------- */

static bool fake_handshake_mode(enum handshake_mode m)
{
    return m == HS_ALERT || m == HS_CLOSE || m == HS_GARBAGE;
}

/* STARTTLS is on offer unless --no-starttls; it needs a certificate, except
 * for the fake handshakes, which never get as far as presenting one. */
static bool starttls_offered(const struct conn *c)
{
    return c->offer_starttls && (S.creds != NULL || fake_handshake_mode(O.handshake));
}

static bool greeted(const struct conn *c)
{
    return c->state == ST_READY || c->state == ST_MAIL || c->state == ST_RCPT;
}

/* Parses "FROM:<path> params" (PREFIX is "FROM:" or "TO:").  The path may
 * hold a quoted local part with '>' in it.  Returns false on bad syntax. */
static bool parse_path(const char *arg, const char *prefix, char **addr, const char **params)
{
    size_t pl = strlen(prefix);
    const char *p;
    bool quoted = false;

    if (strncasecmp(arg, prefix, pl) != 0)
        return false;
    p = arg + pl;
    while (*p == ' ')       /* RFC 5321 forbids the space; clients send it anyway */
        p++;
    if (*p++ != '<')
        return false;
    const char *start = p;
    for (; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            break;
    }
    if (*p != '>')
        return false;
    *addr = xstrndup(start, (size_t)(p - start));
    p++;
    while (*p == ' ')
        p++;
    *params = p;
    return true;
}

static void cmd_ehlo(struct conn *c, const char *arg, bool extended)
{
    enum phase ph = extended ? PH_EHLO : PH_HELO;
    char buf[4096];
    const char *lines[8 + MAX_EXT];
    char first[320], size[32];
    int nl = 0;
    size_t n = 0;
    int code;

    if (*arg == '\0') {
        reply(c, ph, "501", "5.5.4", "Syntax: %s hostname", extended ? "EHLO" : "HELO");
        return;
    }
    snprintf(first, sizeof first, "%s Hello %.255s", O.hostname, arg);
    if (!extended) {
        code = reply(c, ph, "250", NULL, "%s", O.hostname);
    } else {
        bool offer_tls = starttls_offered(c) && (!c->tls_active || O.reoffer);
        lines[nl++] = first;
        if (O.pipelining)
            lines[nl++] = "PIPELINING";
        snprintf(size, sizeof size, "SIZE %lu", O.size);
        lines[nl++] = size;
        if (O.eightbit)
            lines[nl++] = "8BITMIME";
        if (O.enhanced)
            lines[nl++] = "ENHANCEDSTATUSCODES";
        if (O.smtputf8)
            lines[nl++] = "SMTPUTF8";
        if (O.chunking)
            lines[nl++] = "CHUNKING";
        if (offer_tls)
            lines[nl++] = "STARTTLS";
        for (int i = 0; i < O.n_ext[c->tls_active]; i++)
            lines[nl++] = O.ext[c->tls_active][i];
        for (int i = 0; i < nl; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "250%c%s\r\n",
                                  i + 1 < nl ? '-' : ' ', lines[i]);
        const struct bytes *scripted = O.faults[ph][c->tls_active].reply;
        code = scripted != NULL ? answer_bytes(c, ph, scripted->data, scripted->len)
                                : answer_bytes(c, ph, buf, n);
    }
    if (code / 100 != 2)
        return;         /* refused (the client may try HELO), or no answer */
    /* RFC 5321 §4.1.4: EHLO resets the state as RSET does. */
    transaction_reset(c);
    free(c->helo);
    c->helo = xstrndup(arg, strlen(arg));
    c->ehlo = extended;
    c->state = ST_READY;
}

static void starttls_begin(struct conn *c);

static void cmd_starttls(struct conn *c, const char *arg)
{
    if (c->tls_active) {
        violation(c, "STARTTLS over TLS");
        reply(c, PH_STARTTLS, "503", "5.5.1", "TLS already active");
        return;
    }
    if (!starttls_offered(c)) {
        violation(c, "STARTTLS was not offered");
        reply(c, PH_STARTTLS, "502", "5.5.1", "STARTTLS not offered");
        return;
    }
    if (*arg != '\0') {
        reply(c, PH_STARTTLS, "501", "5.5.4", "Syntax: STARTTLS");       /* RFC 3207 §4 */
        return;
    }
    if (c->state != ST_READY) {
        violation(c, "STARTTLS out of sequence");
        reply(c, PH_STARTTLS, "503", "5.5.1", c->state == ST_CONNECTED
              ? "Send EHLO first" : "Mail transaction in progress");
        return;
    }

    /* STARTTLS ends a pipelined group (RFC 3207 §4.2). */
    size_t behind = c->in_len - c->in_off;
    int code = reply(c, PH_STARTTLS, "220", "2.0.0", "Ready to start TLS");
    if (code != 220) {
        /* Refused: the session goes on in plaintext (or got no answer). */
        if (behind > 0)
            violation(c, "%zu bytes pipelined behind STARTTLS", behind);
        return;
    }
    /* CVE-2011-0411: what the client sent behind STARTTLS was sent in clear
     * and must never be taken as if it had come over TLS. */
    if (behind > 0) {
        violation(c, "%zu bytes pipelined behind STARTTLS, discarded", behind);
        log_text(c, "C> (discarded)", (const char *)c->in + c->in_off, behind);
        c->in_off = c->in_len;
    }
    if (O.inject != NULL) {
        logf_(c, "* fault: inject %zu bytes after the 220", O.inject->len);
        log_text(c, "S>", O.inject->data, O.inject->len);
        out_raw(c, O.inject->data, O.inject->len);
    }
    starttls_begin(c);
}

/* Checks MAIL parameters against what was advertised.  Returns false after
 * answering when one is not acceptable. */
static bool mail_params_ok(struct conn *c, const char *params)
{
    char copy[CMD_LINE_MAX + 1];
    char *save = NULL;

    snprintf(copy, sizeof copy, "%s", params);
    for (char *tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        if (strncasecmp(tok, "SIZE=", 5) == 0) {
            if (!c->ehlo) {
                violation(c, "SIZE parameter without EHLO");
                reply(c, PH_MAIL, "555", "5.5.4", "SIZE not supported");
                return false;
            }
            if (O.size != 0 && strtoul(tok + 5, NULL, 10) > O.size) {
                reply(c, PH_MAIL, "552", "5.3.4", "Message size exceeds fixed limit");
                return false;
            }
        } else if (strcasecmp(tok, "BODY=8BITMIME") == 0) {
            if (!c->ehlo || !O.eightbit) {
                violation(c, "BODY=8BITMIME was not offered");
                reply(c, PH_MAIL, "555", "5.5.4", "8BITMIME not supported");
                return false;
            }
        } else if (strcasecmp(tok, "SMTPUTF8") == 0) {
            if (!c->ehlo || !O.smtputf8) {
                violation(c, "SMTPUTF8 was not offered");
                reply(c, PH_MAIL, "555", "5.5.4", "SMTPUTF8 not supported");
                return false;
            }
            c->mail_smtputf8 = true;
        }
    }
    return true;
}

static void cmd_mail(struct conn *c, const char *arg)
{
    char *addr = NULL;
    const char *params;

    if (!greeted(c) || c->state != ST_READY) {
        violation(c, "MAIL out of sequence");
        reply(c, PH_MAIL, "503", "5.5.1", c->state == ST_CONNECTED
              ? "Send EHLO/HELO first" : "Nested MAIL command");
        return;
    }
    if (!parse_path(arg, "FROM:", &addr, &params)) {
        reply(c, PH_MAIL, "501", "5.5.4", "Syntax: MAIL FROM:<address>");
        return;
    }
    c->mail_smtputf8 = false;
    if (!mail_params_ok(c, params)) {
        free(addr);
        return;
    }
    if (has_8bit(addr) && !c->mail_smtputf8) {
        violation(c, "non-ASCII sender without SMTPUTF8");      /* RFC 6531 §3.4 */
        reply(c, PH_MAIL, "553", "5.6.7", "Non-ASCII address requires SMTPUTF8");
        free(addr);
        return;
    }
    c->mail_from = addr;        /* named in the events, should the reply be a fault */
    int code = reply(c, PH_MAIL, "250", "2.1.0", "Ok");
    if (code / 100 != 2) {
        free(c->mail_from);
        c->mail_from = NULL;
        return;
    }
    c->mail_params = xstrndup(params, strlen(params));
    c->state = ST_MAIL;
}

static void cmd_rcpt(struct conn *c, const char *arg)
{
    char *addr = NULL;
    const char *params;
    int code = -1;

    if (c->state != ST_MAIL && c->state != ST_RCPT) {
        violation(c, "RCPT out of sequence");
        reply(c, PH_RCPT, "503", "5.5.1", "Need MAIL command");
        return;
    }
    if (!parse_path(arg, "TO:", &addr, &params) || addr[0] == '\0') {
        free(addr);
        reply(c, PH_RCPT, "501", "5.5.4", "Syntax: RCPT TO:<address>");
        return;
    }
    if (has_8bit(addr) && !c->mail_smtputf8) {
        violation(c, "non-ASCII recipient without SMTPUTF8");
        reply(c, PH_RCPT, "553", "5.6.7", "Non-ASCII address requires SMTPUTF8");
        free(addr);
        return;
    }
    if (c->n_rcpts == MAX_RCPTS) {
        reply(c, PH_RCPT, "452", "4.5.3", "Too many recipients");
        free(addr);
        return;
    }
    c->rcpt_arg = addr;         /* named in the events, should the reply be a fault */
    for (int i = 0; i < O.n_rcpt_replies; i++) {
        if (strcasecmp(O.rcpt_replies[i].addr, addr) == 0) {
            code = answer_bytes(c, PH_RCPT, O.rcpt_replies[i].reply->data,
                                O.rcpt_replies[i].reply->len);
            goto answered;
        }
    }
    code = reply(c, PH_RCPT, "250", "2.1.5", "Ok");
answered:
    c->rcpt_arg = NULL;
    if (code / 100 != 2) {
        free(addr);
        return;
    }
    if (c->n_rcpts % 16 == 0) {
        char **r = realloc(c->rcpts, sizeof *r * (size_t)(c->n_rcpts + 16));
        if (r == NULL) {
            free(addr);
            conn_fail(c, "out of memory");
            return;
        }
        c->rcpts = r;
    }
    c->rcpts[c->n_rcpts++] = addr;
    c->state = ST_RCPT;
}

/* Starts taking content: counters, and the spool file. */
static void content_start(struct conn *c)
{
    c->dlex = DL_BOL;
    c->data_raw = c->data_size = c->bare_lf = c->bare_cr = 0;
    c->data_8bit = false;
    if (O.spool != NULL) {
        char path[4096];
        spool_tmp_path(c, path, sizeof path);
        c->spool_tmp = fopen(path, "w");
        if (c->spool_tmp == NULL)
            logf_(c, "* spool error: %s: %s", path, strerror(errno));
    }
}

static void cmd_data(struct conn *c, const char *arg)
{
    if (c->state != ST_RCPT) {
        if (c->state == ST_MAIL) {
            /* Not a violation: a pipelining client sends DATA before it
             * learns that every RCPT failed (RFC 2920 §3.1). */
            reply(c, PH_DATA, "554", "5.5.1", "No valid recipients");
        } else {
            violation(c, "DATA out of sequence");
            reply(c, PH_DATA, "503", "5.5.1", "Need RCPT command");
        }
        return;
    }
    if (*arg != '\0') {
        reply(c, PH_DATA, "501", "5.5.4", "Syntax: DATA");
        return;
    }
    int code = reply(c, PH_DATA, "354", NULL, "End data with <CR><LF>.<CR><LF>");
    if (code / 100 != 3)
        return;
    content_start(c);
    c->state = ST_DATA;
    soak_content(c);
}

static void end_of_data(struct conn *c);

/* BDAT SIZE [LAST] (RFC 3030, --chunking).  The SIZE bytes that follow are
 * read whatever the reply will be: they are not commands. */
static void cmd_bdat(struct conn *c, const char *arg)
{
    char *end;
    if (!O.chunking) {
        reply(c, PH_OTHER, "500", "5.5.2", "Command not recognized");
        return;
    }
    errno = 0;
    unsigned long n = strtoul(arg, &end, 10);
    if (end == arg || errno != 0 || *arg == '-') {
        reply(c, PH_DATA, "501", "5.5.4", "Syntax: BDAT size [LAST]");
        return;
    }
    while (*end == ' ')
        end++;
    bool last = strcasecmp(end, "LAST") == 0;
    if (*end != '\0' && !last) {
        reply(c, PH_DATA, "501", "5.5.4", "Syntax: BDAT size [LAST]");
        return;
    }
    c->bdat_refused = c->state != ST_RCPT;
    c->bdat_after = c->state;
    if (!c->bdat_refused && !c->in_bdat) {
        content_start(c);
        c->in_bdat = true;
    }
    c->bdat_left = c->bdat_size = n;
    c->bdat_last = last;
    c->state = ST_BDAT;
}

/* A chunk has been read whole: its reply. */
static void bdat_chunk_done(struct conn *c)
{
    if (c->bdat_refused) {
        c->state = c->bdat_after;
        if (c->state == ST_MAIL)
            reply(c, PH_DATA, "554", "5.5.1", "No valid recipients");
        else
            reply(c, PH_DATA, "503", "5.5.1", "Need RCPT command");
        return;
    }
    if (c->bdat_last) {
        end_of_data(c);
        return;
    }
    c->state = ST_RCPT;
    reply(c, PH_DATA, "250", "2.0.0", "%lu octets received", c->bdat_size);
}

/* Takes what is buffered of the chunk: content as it is. */
static void next_chunk(struct conn *c)
{
    size_t avail = c->in_len - c->in_off;
    if (avail > c->bdat_left)
        avail = c->bdat_left;
    const unsigned char *p = c->in + c->in_off;
    if (!c->bdat_refused) {
        for (size_t i = 0; i < avail; i++)
            if (p[i] >= 0x80)
                c->data_8bit = true;
        c->data_size += avail;
        if (S.events != NULL && c->head_len < sizeof c->head) {
            size_t keep = sizeof c->head - c->head_len < avail
                              ? sizeof c->head - c->head_len : avail;
            memcpy(c->head + c->head_len, p, keep);
            c->head_len += keep;
        }
        if (c->spool_tmp != NULL && avail > 0)
            fwrite(p, 1, avail, c->spool_tmp);
        c->data_raw += avail;
    }
    c->in_off += avail;
    c->bdat_left -= avail;
    if (c->bdat_left == 0)
        bdat_chunk_done(c);
}

/* The value of the first --id-header field in the content kept (the
 * field on one line), into OUT; false when there is none. */
static bool header_value(const struct conn *c, char *out, size_t size)
{
    size_t nl = strlen(O.id_header);
    const char *p = c->head, *end = c->head + c->head_len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return false;
        size_t len = (size_t)(eol - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len == 0)
            return false;       /* the end of the header */
        if (len > nl && p[nl] == ':' && strncasecmp(p, O.id_header, nl) == 0) {
            const char *v = p + nl + 1;
            size_t vl = len - nl - 1;
            while (vl > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            snprintf(out, size, "%.*s", (int)vl, v);
            return true;
        }
        p = eol + 1;
    }
    return false;
}

/* Message N is stored: counted, logged, spooled. */
static void accept_message(struct conn *c, unsigned long n)
{
    char id[256];

    S.next_msg++;
    logf_(c, "* message %lu accepted (%s)", n, mode(c));
    if (S.events != NULL) {
        event_start("stored");
        fprintf(S.events, ", \"conn\": %lu, \"message\": %lu, \"tls\": %s, \"from\": ", c->id, n,
                c->tls_active ? "true" : "false");
        json_string(S.events, c->mail_from);
        fputs(", \"id\": ", S.events);
        json_string(S.events, header_value(c, id, sizeof id) ? id : NULL);
        fputs(", \"rcpt_to\": [", S.events);
        for (int i = 0; i < c->n_rcpts; i++) {
            if (i > 0)
                fputs(", ", S.events);
            json_string(S.events, c->rcpts[i]);
        }
        fprintf(S.events, "], \"size\": %lu}\n", c->data_size);
    }
    if (c->spool_tmp != NULL)
        spool_commit(c, n);
}

/* --soak at the end of data: a refusal, or message N stored and the
 * connection lost before the client can learn it.  Returns the code the
 * server meant, as answer_bytes() does. */
static int soak_eod(struct conn *c, enum soak_kind k, unsigned long n)
{
    static const char r451[] = "451 4.3.0 soak: local error in processing\r\n";
    static const char r554[] = "554 5.6.0 soak: message refused\r\n";
    const char *r = k == SK_421 ? reply_421 : k == SK_451 ? r451 : k == SK_554 ? r554 : NULL;

    if (r != NULL) {
        soak_event(c, k, "eod");
        return answer_bytes(c, PH_EOD, r, strlen(r));
    }
    accept_message(c, n);       /* stored, and logged so, before the fault */
    soak_event(c, k, "eod");
    if (k == SK_STALL_AFTER_DOT)
        c->state = ST_STALLED;
    else
        conn_close_as(c, k == SK_RESET_AFTER_DOT ? CLOSE_RST : CLOSE_ALERT);
    return -1;
}

static void end_of_data(struct conn *c)
{
    bool spool_ok = O.spool == NULL
                    || (c->spool_tmp != NULL && fflush(c->spool_tmp) == 0 && !ferror(c->spool_tmp));
    unsigned long n = S.next_msg;
    enum soak_kind k;
    int code;

    logf_(c, "C> [%s] . (end of data: %lu bytes of content, %lu on the wire)",
          mode(c), c->data_size, c->data_raw);
    if (c->bare_lf > 0 || c->bare_cr > 0)
        violation(c, "message content has %lu bare LF and %lu bare CR", c->bare_lf, c->bare_cr);
    bool declared_8bit = c->mail_smtputf8
                         || (c->mail_params != NULL && strcasestr(c->mail_params, "BODY=8BITMIME"));
    if (c->data_8bit && !declared_8bit)
        violation(c, "8-bit message content without BODY=8BITMIME");

    c->state = ST_READY;        /* unless the reply below says otherwise */
    if (!spool_ok)
        code = reply(c, PH_EOD, "451", "4.3.0", "Spool write failed");
    else if (O.size != 0 && c->data_size > O.size)
        code = reply(c, PH_EOD, "552", "5.3.4", "Message too big");
    else if ((k = soak_draw(c, soak_at[PH_EOD])) != SK_NONE)
        code = soak_eod(c, k, n);
    else
        code = reply(c, PH_EOD, "250", "2.0.0", "Ok: queued as %lu", n);
    if (code / 100 == 2)
        accept_message(c, n);
    transaction_reset(c);
}

static void cmd_rset(struct conn *c)
{
    int code = reply(c, PH_RSET, "250", "2.0.0", "Ok");

    if (code >= 0) {
        transaction_reset(c);
        if (greeted(c))
            c->state = ST_READY;
    }
}

static void cmd_quit(struct conn *c)
{
    if (reply(c, PH_QUIT, "221", "2.0.0", "Bye") >= 0)
        conn_close_as(c, CLOSE_QUIT);
}

/* Commands that must end a pipelined group (RFC 2920 §3.1, RFC 3207 §4.2):
 * a byte already buffered behind one was sent before its reply was seen. */
static bool last_in_group(const char *verb)
{
    static const char *const verbs[] = { "EHLO", "HELO", "DATA", "QUIT", "NOOP", "VRFY", "EXPN" };

    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcasecmp(verb, verbs[i]) == 0)
            return true;
    return false;
}

/* Handles one command line (LEN bytes at LINE, CRLF removed; LINE[LEN] may
 * be overwritten). */
static void handle_line(struct conn *c, char *line, size_t len)
{
    char verb[16];
    size_t vl = 0;

    log_text(c, "C>", line, len);
    if (memchr(line, '\0', len) != NULL) {
        violation(c, "NUL in command line");
        reply(c, PH_OTHER, "500", "5.5.2", "NUL in command");
        return;
    }
    line[len] = '\0';
    while (vl < len && line[vl] != ' ' && vl + 1 < sizeof verb) {
        verb[vl] = line[vl];
        vl++;
    }
    verb[vl] = '\0';
    const char *arg = line + vl;
    while (*arg == ' ')
        arg++;

    bool more = c->in_off < c->in_len;
    if (more && last_in_group(verb))
        violation(c, "%zu bytes pipelined behind %s", c->in_len - c->in_off, verb);
    else if (more && !O.pipelining && strcasecmp(verb, "STARTTLS") != 0)
        violation(c, "pipelining was not offered");

    if (c->state == ST_NO_SERVICE && strcasecmp(verb, "QUIT") != 0) {
        reply(c, PH_OTHER, "503", "5.5.1", "No service");
        return;
    }
    if (strcasecmp(verb, "EHLO") == 0)
        cmd_ehlo(c, arg, true);
    else if (strcasecmp(verb, "HELO") == 0)
        cmd_ehlo(c, arg, false);
    else if (strcasecmp(verb, "STARTTLS") == 0)
        cmd_starttls(c, arg);
    else if (strcasecmp(verb, "MAIL") == 0)
        cmd_mail(c, arg);
    else if (strcasecmp(verb, "RCPT") == 0)
        cmd_rcpt(c, arg);
    else if (strcasecmp(verb, "DATA") == 0)
        cmd_data(c, arg);
    else if (strcasecmp(verb, "BDAT") == 0)
        cmd_bdat(c, arg);
    else if (strcasecmp(verb, "RSET") == 0)
        cmd_rset(c);
    else if (strcasecmp(verb, "NOOP") == 0)
        reply(c, PH_NOOP, "250", "2.0.0", "Ok");
    else if (strcasecmp(verb, "QUIT") == 0)
        cmd_quit(c);
    else if (strcasecmp(verb, "VRFY") == 0)
        reply(c, PH_OTHER, "252", "2.5.2", "Cannot VRFY user");
    else if (strcasecmp(verb, "HELP") == 0)
        reply(c, PH_OTHER, "214", "2.0.0", "faultsrv");
    else
        reply(c, PH_OTHER, "500", "5.5.2", "Command not recognized");
}

/* Takes the next command line out of the input.  Returns false when no
 * complete line is buffered yet. */
static bool next_command(struct conn *c)
{
    unsigned char *start = c->in + c->in_off;
    size_t avail = c->in_len - c->in_off;
    unsigned char *lf = memchr(start, '\n', avail);

    if (lf == NULL) {
        if (c->skipping_line) {
            c->in_off = c->in_len;
            return true;
        }
        if (avail < CMD_LINE_MAX)
            return false;
        log_text(c, "C> (too long)", (const char *)start, 80);
        reply(c, PH_OTHER, "500", "5.5.2", "Line too long");
        c->skipping_line = true;
        c->in_off = c->in_len;
        return true;
    }
    size_t len = (size_t)(lf - start);
    c->in_off += len + 1;
    if (c->skipping_line) {
        c->skipping_line = false;
        return true;
    }
    if (len > 0 && start[len - 1] == '\r')
        len--;
    else
        violation(c, "command line ends in a bare LF");
    if (len > CMD_LINE_MAX) {
        log_text(c, "C> (too long)", (const char *)start, 80);
        reply(c, PH_OTHER, "500", "5.5.2", "Line too long");
        return true;
    }
    handle_line(c, (char *)start, len);
    return true;
}

/* ---- message content ------------------------------------------------------------ */

/* Feeds message bytes through the end-of-data recogniser, undoing
 * dot-stuffing.  Only CRLF starts a line: a bare CR or LF is content, kept
 * and counted, so a test can see that a client let one through (SMTP
 * smuggling).  Returns the bytes used: all N, or up to the final ".\r\n". */
static size_t data_feed(struct conn *c, const unsigned char *p, size_t n, bool *end)
{
    unsigned char out[IN_BUF_SIZE + 2];
    size_t o = 0, i;

    *end = false;
    for (i = 0; i < n && !*end; i++) {
        unsigned char ch = p[i];
        if (ch >= 0x80)
            c->data_8bit = true;
        switch (c->dlex) {
        case DL_BOL:
            if (ch == '.') {
                c->dlex = DL_DOT;
                continue;
            }
            break;
        case DL_DOT:
            if (ch == '\r') {
                c->dlex = DL_DOT_CR;
                continue;
            }
            break;              /* the dot was stuffing: drop it */
        case DL_DOT_CR:
            if (ch == '\n') {
                *end = true;
                continue;
            }
            out[o++] = '\r';    /* ".\r" + something else: a stuffed dot, a bare CR */
            c->bare_cr++;
            break;
        case DL_CR:
            if (ch == '\n') {
                out[o++] = '\n';
                c->dlex = DL_BOL;
                continue;
            }
            c->bare_cr++;
            break;
        case DL_TEXT:
            break;
        }
        out[o++] = ch;
        if (ch == '\n')
            c->bare_lf++;
        c->dlex = ch == '\r' ? DL_CR : DL_TEXT;
    }
    c->data_size += o;
    if (S.events != NULL && c->head_len < sizeof c->head) {
        size_t keep = sizeof c->head - c->head_len < o ? sizeof c->head - c->head_len : o;
        memcpy(c->head + c->head_len, out, keep);
        c->head_len += keep;
    }
    if (c->spool_tmp != NULL && o > 0)
        fwrite(out, 1, o, c->spool_tmp);
    return i;
}

static void next_data(struct conn *c)
{
    unsigned long limit = c->drop_at != 0 ? c->drop_at : O.drop_at[c->tls_active];
    size_t avail = c->in_len - c->in_off;
    bool end;

    if (limit != 0 && c->data_raw + avail > limit)
        avail = limit - c->data_raw;
    size_t used = data_feed(c, c->in + c->in_off, avail, &end);
    c->in_off += used;
    c->data_raw += used;
    if (end) {
        end_of_data(c);
    } else if (limit != 0 && c->data_raw >= limit) {
        spool_discard(c);
        if (c->drop_at != 0) {
            soak_event(c, c->drop_kind, "content");
            conn_close_as(c, c->drop_kind == SK_RESET_IN_DATA ? CLOSE_RST : CLOSE_ALERT);
        } else {
            conn_abandon(c, "in message data");
        }
    }
}

/* ---- TLS ------------------------------------------------------------------------ */

static void starttls_begin(struct conn *c)
{
    int r;

    if (fake_handshake_mode(c->hs_mode)) {
        c->state = ST_FAKE_HANDSHAKE;
        return;
    }
    if ((r = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL)) < 0
        || (r = gnutls_priority_set(c->tls, S.prio)) < 0
        || (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, S.creds)) < 0) {
        conn_fail(c, gnutls_strerror(r));
        return;
    }
    gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
    if (O.tickets && (r = gnutls_session_ticket_enable_server(c->tls, &S.ticket_key)) < 0) {
        conn_fail(c, gnutls_strerror(r));
        return;
    }
    gnutls_transport_set_int(c->tls, c->fd);
    c->state = ST_TLS_PENDING;
}

static void tls_established(struct conn *c)
{
    size_t len = sizeof c->sni - 1;
    unsigned type;

    c->tls_active = true;
    snprintf(c->tls_version, sizeof c->tls_version, "%s",
             gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)));
    snprintf(c->tls_cipher, sizeof c->tls_cipher, "%s",
             gnutls_cipher_get_name(gnutls_cipher_get(c->tls)));
    if (gnutls_server_name_get(c->tls, c->sni, &len, &type, 0) != GNUTLS_E_SUCCESS
        || type != GNUTLS_NAME_DNS)
        c->sni[0] = '\0';
    logf_(c, "* tls handshake ok: %s %s sni=%s%s", c->tls_version, c->tls_cipher,
          c->sni[0] != '\0' ? c->sni : "(none)",
          gnutls_session_is_resumed(c->tls) ? " resumed" : "");
    /* RFC 3207 §4.2: forget everything learned from the client in clear. */
    transaction_reset(c);
    free(c->helo);
    c->helo = NULL;
    c->ehlo = false;
    c->state = ST_CONNECTED;
}

/* Advances the handshake.  Returns true when something happened. */
static bool tls_handshake_step(struct conn *c)
{
    int r = gnutls_handshake(c->tls);

    if (r == GNUTLS_E_SUCCESS) {
        tls_established(c);
        return true;
    }
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
        return false;
    if (!gnutls_error_is_fatal(r)) {
        logf_(c, "* tls handshake: %s", gnutls_strerror(r));
        return true;
    }
    logf_(c, "* tls handshake failed: %s", gnutls_strerror(r));
    gnutls_alert_send_appropriate(c->tls, r);
    c->state = ST_DEAD;
    return true;
}

/* --handshake alert|close|garbage: the ClientHello has arrived; answer it
 * with something that is not a ServerHello. */
static void fake_handshake(struct conn *c)
{
    /* A TLS alert record: fatal (2), handshake_failure (40). */
    static const char alert[] = "\x15\x03\x01\x00\x02\x02\x28";
    static const char garbage[] = "garbage instead of a ServerHello\r\n";

    logf_(c, "C> [plain] (%zu bytes of ClientHello, discarded)", c->in_len - c->in_off);
    c->in_off = c->in_len;
    switch (c->hs_mode) {
    case HS_ALERT:
        logf_(c, "* fault: handshake answered with a fatal alert");
        out_raw(c, alert, sizeof alert - 1);
        break;
    case HS_GARBAGE:
        logf_(c, "* fault: handshake answered with garbage");
        log_text(c, "S>", garbage, sizeof garbage - 1);
        out_raw(c, garbage, sizeof garbage - 1);
        break;
    default:
        logf_(c, "* fault: handshake answered by closing the connection");
        break;
    }
    if (c->state != ST_DEAD)
        conn_close_as(c, CLOSE_FIN);
}

/* ---- transport -------------------------------------------------------------------- */

enum { READ_AGAIN = 0, READ_EOF = -1, READ_ERROR = -2 };

/* Reads what is available into the input buffer.  Returns the byte count,
 * READ_AGAIN, READ_EOF (logged) or READ_ERROR (logged). */
static long conn_read(struct conn *c)
{
    size_t room = sizeof c->in - c->in_len;

    if (c->slow_read && room > SLOW_CHUNK)
        room = SLOW_CHUNK;

    if (room == 0)
        return READ_AGAIN;
    if (c->tls_active) {
        ssize_t r = gnutls_record_recv(c->tls, c->in + c->in_len, room);
        if (r > 0) {
            c->in_len += (size_t)r;
            return (long)r;
        }
        if (r == 0) {
            logf_(c, "* client sent close_notify");
            return READ_EOF;
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            return READ_AGAIN;
        if (r == GNUTLS_E_REHANDSHAKE) {
            /* CVE-2009-3555: this server never renegotiates. */
            violation(c, "TLS renegotiation attempt");
            gnutls_alert_send(c->tls, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
            return READ_AGAIN;
        }
        if (r == GNUTLS_E_PREMATURE_TERMINATION) {
            logf_(c, "* client closed the connection without close_notify");
            return READ_EOF;
        }
        logf_(c, "* tls read error: %s", gnutls_strerror((int)r));
        return READ_ERROR;
    }
    ssize_t r = recv(c->fd, c->in + c->in_len, room, 0);
    if (r > 0) {
        c->in_len += (size_t)r;
        return (long)r;
    }
    if (r == 0) {
        logf_(c, "* client closed the connection");
        return READ_EOF;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return READ_AGAIN;
    logf_(c, "* read error: %s", strerror(errno));
    return READ_ERROR;
}

/* RFC 3207 §4.2 (and CVE-2011-0411): after STARTTLS a client sends nothing
 * until it has the whole 220; then its next bytes are the ClientHello.  So a
 * byte waiting while the 220 is still being written was sent too early.
 * Peeking leaves it for the handshake.  --drip starttls:MS widens the window. */
static void check_early_bytes(struct conn *c)
{
    char b;

    if (c->early_bytes_seen || (c->state != ST_TLS_PENDING && c->state != ST_FAKE_HANDSHAKE))
        return;
    if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        c->early_bytes_seen = true;
        violation(c, "bytes sent before the 220 to STARTTLS was complete");
    }
}

/* Writes queued output; a dripping connection writes one byte when due.
 * Returns true when something was written. */
static bool conn_flush(struct conn *c)
{
    bool wrote = false;

    while (out_pending(c) > 0 && c->state != ST_DEAD) {
        size_t want = c->out_len - c->out_off;
        ssize_t r;

        if (c->tls_send_again) {
            /* GnuTLS must finish the record it started; it says how many
             * of our bytes that record carried. */
            r = gnutls_record_send(c->tls, NULL, 0);
        } else {
            if (c->drip_ms > 0) {
                if (S.now < c->drip_due)
                    break;
                want = 1;
            }
            check_early_bytes(c);
            r = c->tls_active ? gnutls_record_send(c->tls, c->out + c->out_off, want)
                              : send(c->fd, c->out + c->out_off, want, MSG_NOSIGNAL);
        }
        if (r < 0) {
            if (c->tls_active ? r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED
                              : errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                c->tls_send_again = c->tls_active;
                break;
            }
            conn_fail(c, c->tls_active ? gnutls_strerror((int)r) : strerror(errno));
            break;
        }
        c->tls_send_again = false;
        c->out_off += (size_t)r;
        wrote = true;
        if (c->drip_ms > 0) {
            c->drip_due = S.now + (uint64_t)c->drip_ms;
            if (out_pending(c) > 0)
                break;
        }
    }
    if (out_pending(c) == 0) {
        c->out_off = c->out_len = 0;
        c->drip_ms = 0;
    }
    return wrote;
}

/* Generates the next part of an endless reply, as the output drains. */
static void endless_more(struct conn *c)
{
    char line[64];

    if (!c->endless_multiline && c->endless_seq++ == 0) {
        int n = snprintf(line, sizeof line, "%s endless line ", c->endless_code);
        out_raw(c, line, (size_t)n);
    }
    for (size_t sent = 0; sent < ENDLESS_CHUNK && c->state != ST_DEAD;) {
        int n;
        if (c->endless_multiline) {
            n = snprintf(line, sizeof line, "%s-endless reply line %lu\r\n",
                         c->endless_code, ++c->endless_seq);
        } else {
            memset(line, 'x', sizeof line);
            n = (int)sizeof line;
        }
        out_raw(c, line, (size_t)n);
        sent += (size_t)n;
    }
}

/* Reads and throws away what the peer sends after we shut our side. */
static void linger_read(struct conn *c)
{
    char junk[4096];

    for (int i = 0; i < 16; i++) {
        ssize_t r = recv(c->fd, junk, sizeof junk, 0);
        if (r > 0)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        c->state = ST_DEAD;     /* EOF or error: the peer is done */
        return;
    }
}

/* ST_CLOSING: once the output is written, end the TLS session the way
 * close_how says and shut our side.  Returns true when it moved on. */
static bool closing_step(struct conn *c)
{
    if (c->close_how == CLOSE_RST) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        c->state = ST_DEAD;
        return true;
    }
    if (out_pending(c) > 0)
        return false;
    /* Best effort: if the client does not read, the alert or close_notify
     * may be cut short by the shutdown below; that client is gone anyway. */
    if (c->tls_active && c->close_how == CLOSE_QUIT)
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
    else if (c->tls_active && c->close_how == CLOSE_ALERT)
        gnutls_alert_send(c->tls, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
    shutdown(c->fd, SHUT_WR);
    c->linger_until = S.now + LINGER_MS;
    c->state = ST_LINGER;
    return true;
}

static bool command_state(enum conn_state st)
{
    return st == ST_CONNECTED || st == ST_NO_SERVICE || st == ST_READY
           || st == ST_MAIL || st == ST_RCPT;
}

/* Whether the input buffer should be filled now. */
static bool wants_input(const struct conn *c)
{
    if (c->peer_eof)
        return false;
    if (command_state(c->state))
        return out_pending(c) < OUT_HIGH_WATER;
    if (c->state == ST_FAKE_HANDSHAKE)
        return out_pending(c) == 0;     /* the ClientHello comes after the 220 */
    if (c->state == ST_DATA && S.now < c->read_due)
        return false;                   /* --soak: a slow read, or a stall */
    return c->state == ST_DATA || c->state == ST_BDAT || c->state == ST_STALLED
           || c->state == ST_ENDLESS;
}

/* Consumes buffered input as the state allows.  Returns true when it did. */
static bool process_input(struct conn *c)
{
    size_t start = c->in_off;

    while (c->in_off < c->in_len) {
        if (command_state(c->state)) {
            if (out_pending(c) >= OUT_HIGH_WATER || !next_command(c))
                break;
        } else if (c->state == ST_DATA) {
            next_data(c);
        } else if (c->state == ST_BDAT) {
            next_chunk(c);
        } else if (c->state == ST_STALLED || c->state == ST_ENDLESS) {
            log_text(c, "C> (ignored)", (const char *)c->in + c->in_off, c->in_len - c->in_off);
            c->in_off = c->in_len;
        } else if (c->state == ST_FAKE_HANDSHAKE) {
            if (out_pending(c) > 0)
                break;
            fake_handshake(c);
        } else {
            break;
        }
    }
    bool used = c->in_off != start;
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
    return used;
}

/* The peer ended its side of the stream. */
static void conn_eof(struct conn *c)
{
    c->peer_eof = true;
    /* A client may shut its side and go on reading: an endless reply goes
     * on until writing fails. */
    if (c->state == ST_ENDLESS)
        return;
    if (c->state == ST_DATA || c->state == ST_BDAT) {
        logf_(c, "* end of stream in message data after %lu bytes", c->data_raw);
        spool_discard(c);
    }
    if (c->state != ST_CLOSING)
        conn_close_as(c, CLOSE_FIN);
}

static void conn_free(struct conn *c);

static void epoll_update(struct conn *c)
{
    unsigned ev = 0;

    if (c->state == ST_TLS_HANDSHAKE)
        ev = gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN;
    else if (wants_input(c) || c->state == ST_LINGER)
        ev = EPOLLIN;
    if (c->tls_send_again || (out_pending(c) > 0 && c->drip_ms == 0))
        ev |= EPOLLOUT;
    if (ev != c->events) {
        struct epoll_event e = { .events = ev, .data.ptr = c };
        epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &e);
        c->events = ev;
    }
}

/* Advances a connection as far as it can go without waiting: writes, reads,
 * handles commands and content, steps the handshake.  Frees the connection
 * when it is done; the caller must not use C afterwards. */
static void conn_run(struct conn *c)
{
    int round;

    for (round = 0; round < RUN_ROUNDS && c->state != ST_DEAD; round++) {
        bool progress = conn_flush(c);

        switch (c->state) {
        case ST_TLS_PENDING:
            if (out_pending(c) == 0) {
                c->state = ST_TLS_HANDSHAKE;
                progress = true;
            }
            break;
        case ST_TLS_HANDSHAKE:
            progress |= tls_handshake_step(c);
            break;
        case ST_CLOSING:
            progress |= closing_step(c);
            break;
        case ST_LINGER:
            if (S.now >= c->linger_until)
                c->state = ST_DEAD;
            else
                linger_read(c);
            break;
        case ST_ENDLESS:
            if (S.now >= c->endless_due && out_pending(c) < OUT_HIGH_WATER) {
                endless_more(c);
                c->endless_due = S.now + (uint64_t)O.pace_ms;
                progress |= conn_flush(c);
            }
            break;
        default:
            break;
        }
        if (c->state == ST_DEAD)
            break;
        if (wants_input(c)) {
            long r = conn_read(c);
            if (r > 0)
                progress = true;
            if (r > 0 && c->slow_read)
                c->read_due = S.now + SLOW_MS;
            progress |= process_input(c);
            if (r == READ_EOF) {
                conn_eof(c);
                progress = true;
            } else if (r == READ_ERROR) {
                c->state = ST_DEAD;
            }
        } else {
            progress |= process_input(c);
        }
        if (!progress)
            break;
    }

    if (c->state != ST_DEAD && c->hangup) {
        logf_(c, "* hangup");
        c->state = ST_DEAD;
    }
    if (c->state == ST_DEAD) {
        conn_free(c);
        return;
    }

    uint64_t wake = 0;
    if (round == RUN_ROUNDS)
        wake = S.now;           /* more to do: yield to the others, come back */
    else if (c->drip_ms > 0 && out_pending(c) > 0)
        wake = c->drip_due;
    else if (c->state == ST_ENDLESS)
        wake = c->endless_due;
    else if (c->state == ST_LINGER)
        wake = c->linger_until;
    else if (c->state == ST_DATA && c->read_due > S.now)
        wake = c->read_due;
    conn_set_wake(c, wake);
    epoll_update(c);
}

/* ---- connections come and go ---------------------------------------------------- */

static void listener_enable(bool on)
{
    struct epoll_event e = { .events = on ? EPOLLIN : 0, .data.ptr = NULL };

    epoll_ctl(S.ep, EPOLL_CTL_MOD, S.listen_fd, &e);
    S.listen_paused = !on;
}

static void conn_free(struct conn *c)
{
    logf_(c, "* close");
    conn_set_wake(c, 0);
    transaction_reset(c);
    free(c->helo);
    free(c->out);
    if (c->tls != NULL)
        gnutls_deinit(c->tls);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        S.conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    S.closed++;
    if (S.listen_paused)
        listener_enable(true);
}

static void greet(struct conn *c)
{
    int code = reply(c, PH_GREETING, "220", NULL, "%s ESMTP faultsrv", O.hostname);

    if (code >= 0)
        c->state = code / 100 == 2 ? ST_CONNECTED : ST_NO_SERVICE;
}

static void conn_new(int fd, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof *c);
    int one = 1;
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->id = ++S.accepted;
    c->state = ST_CONNECTED;
    c->hs_mode = O.handshake;
    c->offer_starttls = O.starttls;
    if (O.soak) {
        c->rng = mix64(O.soak_seed ^ mix64(c->id));
        c->offer_starttls = O.starttls && rng_below(c, 100) < O.soak_tls;
    }
    /* Replies go out as soon as they are complete; drip needs each byte in
     * its own segment. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    getnameinfo((const struct sockaddr *)ss, sizeof *ss, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
    c->events = EPOLLIN;
    struct epoll_event e = { .events = c->events, .data.ptr = c };
    if (epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = S.conns;
    if (S.conns != NULL)
        S.conns->prev = c;
    S.conns = c;
    logf_(c, "* open from %s", c->peer);
    if (S.events != NULL) {
        event_start("open");
        fprintf(S.events, ", \"conn\": %lu, \"starttls\": %s}\n", c->id,
                starttls_offered(c) ? "true" : "false");
    }
    greet(c);
    conn_run(c);
}

static void accept_some(void)
{
    for (int i = 0; i < 64 && S.listen_fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(S.listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered epoll would spin on the pending
                 * connection: wait until one of ours closes. */
                logf_(NULL, "* accept: %s; pausing", strerror(errno));
                listener_enable(false);
            }
            return;
        }
        conn_new(fd, &ss);
        if (O.max_conns != 0 && S.accepted >= O.max_conns) {
            /* Refuse the rest at once rather than leave them waiting. */
            close(S.listen_fd);
            S.listen_fd = -1;
            S.listen_paused = false;
        }
    }
}

/* ---- timers and the loop ------------------------------------------------------------ */

static int timers_timeout(void)
{
    uint64_t first = UINT64_MAX;

    for (struct conn *c = S.timers; c != NULL; c = c->timer_next)
        if (c->wake_at < first)
            first = c->wake_at;
    if (first == UINT64_MAX)
        return -1;
    if (first <= S.now)
        return 0;
    return first - S.now > INT32_MAX ? INT32_MAX : (int)(first - S.now);
}

static void timers_run(void)
{
    struct conn *next;

    for (struct conn *c = S.timers; c != NULL; c = next) {
        next = c->timer_next;
        if (c->wake_at <= S.now) {
            conn_set_wake(c, 0);
            conn_run(c);        /* may free C or list it again, at the head */
        }
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void serve(void)
{
    struct epoll_event evs[256];
    sigset_t block, unblocked;
    struct sigaction sa = { .sa_handler = on_signal };

    /* SIGINT and SIGTERM are only let in while epoll waits, so a signal can
     * neither be missed nor interrupt a half-done step. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &unblocked);
    sigdelset(&unblocked, SIGINT);
    sigdelset(&unblocked, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    while (!stop_requested) {
        if (O.max_conns != 0 && S.closed >= O.max_conns)
            break;
        S.now = now_ms();
        int n = epoll_pwait(S.ep, evs, (int)(sizeof evs / sizeof evs[0]), timers_timeout(),
                            &unblocked);
        if (n < 0 && errno != EINTR)
            die(1, "epoll_wait: %s", strerror(errno));
        S.now = now_ms();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                accept_some();
                continue;
            }
            if (evs[i].events & (EPOLLHUP | EPOLLERR))
                c->hangup = true;
            conn_run(c);
        }
        timers_run();
        if (S.log != NULL)
            fflush(S.log);
        if (S.events != NULL)
            fflush(S.events);
    }
    while (S.conns != NULL)
        conn_free(S.conns);
    logf_(NULL, "* exit: %lu connections, %lu messages", S.accepted, S.next_msg - 1);
    if (S.log != NULL)
        fclose(S.log);
    if (S.events != NULL) {
        event_start("exit");
        fprintf(S.events, ", \"connections\": %lu, \"messages\": %lu}\n", S.accepted,
                S.next_msg - 1);
        fclose(S.events);
    }
}

/* ---- start-up ------------------------------------------------------------------------ */

static void start_listening(void)
{
    char host[256];
    const char *colon = strrchr(O.listen, ':');
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai;
    int one = 1, r;

    if (colon == NULL || (size_t)(colon - O.listen) >= sizeof host)
        die(64, "--listen wants HOST:PORT, not \"%s\"", O.listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - O.listen), O.listen);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {     /* [::1]:25 */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if ((r = getaddrinfo(host, colon + 1, &hints, &ai)) != 0)
        die(64, "--listen %s: %s", O.listen, gai_strerror(r));
    S.listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (S.listen_fd < 0)
        die(1, "socket: %s", strerror(errno));
    setsockopt(S.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(S.listen_fd, ai->ai_addr, ai->ai_addrlen) != 0
        || listen(S.listen_fd, SOMAXCONN) != 0)
        die(1, "listen on %s: %s", O.listen, strerror(errno));
    freeaddrinfo(ai);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(S.listen_fd, (struct sockaddr *)&ss, &sl);
    unsigned port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    printf("PORT %u\n", port);
    fflush(stdout);

    struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(S.ep, EPOLL_CTL_ADD, S.listen_fd, &e);
}


/* --ocsp-response: a copy of the file for each handshake (GnuTLS frees
 * it), whatever it says. */
static int staple_ocsp(gnutls_session_t session, void *ptr, gnutls_datum_t *resp)
{
    (void)session;
    (void)ptr;
    resp->data = gnutls_malloc(S.ocsp_response.size);
    if (resp->data == NULL)
        return GNUTLS_E_MEMORY_ERROR;
    memcpy(resp->data, S.ocsp_response.data, S.ocsp_response.size);
    resp->size = S.ocsp_response.size;
    return 0;
}
static void setup_tls(void)
{
    static const char *const presets[] = {
        [HS_NORMAL] = "NORMAL",
        [HS_TLS10] = "NORMAL:-VERS-ALL:+VERS-TLS1.0",
        [HS_TLS12] = "NORMAL:-VERS-ALL:+VERS-TLS1.2",
        /* The NULL cipher exists only with TLS 1.0-1.2 and is in no
         * default priority: a client with any sane setting shares none. */
        [HS_NOCIPHER] = "NONE:+VERS-TLS1.2:+NULL:+SHA1:+ECDHE-ECDSA:+ECDHE-RSA:+COMP-NULL"
                        ":+SIGN-ALL:+GROUP-ALL",
    };
    const char *prio = O.priority;
    const char *err = NULL;
    int r;

    if (O.cert == NULL && O.key == NULL)
        return;
    if (O.cert == NULL || O.key == NULL)
        die(64, "--cert and --key go together");
    if ((r = gnutls_certificate_allocate_credentials(&S.creds)) < 0
        || (r = gnutls_certificate_set_x509_key_file(S.creds, O.cert, O.key,
                                                     GNUTLS_X509_FMT_PEM)) < 0)
        die(1, "%s / %s: %s", O.cert, O.key, gnutls_strerror(r));
    /* Served by a callback, not gnutls_certificate_set_ocsp_status_request
     * _file2(): that one refuses to load a response saying "revoked", and
     * the tests need exactly that staple too. */
    if (O.ocsp_response != NULL
        && ((r = gnutls_load_file(O.ocsp_response, &S.ocsp_response)) < 0
            || (r = gnutls_certificate_set_ocsp_status_request_function2(
                    S.creds, 0, staple_ocsp, NULL)) < 0))
        die(1, "--ocsp-response %s: %s", O.ocsp_response, gnutls_strerror(r));
    if (prio == NULL)
        prio = O.handshake < sizeof presets / sizeof presets[0] && presets[O.handshake] != NULL
               ? presets[O.handshake] : presets[HS_NORMAL];
    if ((r = gnutls_priority_init(&S.prio, prio, &err)) < 0)
        die(64, "priority \"%s\": %s at \"%s\"", prio, gnutls_strerror(r), err ? err : "");
    if (O.tickets && (r = gnutls_session_ticket_key_generate(&S.ticket_key)) < 0)
        die(1, "session ticket key: %s", gnutls_strerror(r));
}

/* ---- the command line ------------------------------------------------------------------ */

static unsigned long parse_ulong(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        die(64, "%s wants a number, not \"%s\"", opt, s);
    return v;
}

/* Collects the faults a PHASE spec (NAME[@tls|@plain], or "all") selects,
 * from SPEC's first LEN bytes.  Returns how many went to OUT. */
static int select_faults(const char *opt, const char *spec, size_t len,
                         struct fault *out[PH_COUNT * 2])
{
    const char *at = memchr(spec, '@', len);
    size_t name_len = at != NULL ? (size_t)(at - spec) : len;
    bool tr[2] = { true, true };
    int n = 0;

    if (at != NULL) {
        size_t ql = len - name_len - 1;
        if (ql == 3 && strncmp(at + 1, "tls", 3) == 0)
            tr[0] = false;
        else if (ql == 5 && strncmp(at + 1, "plain", 5) == 0)
            tr[1] = false;
        else
            die(64, "%s: \"%.*s\": the qualifier is @tls or @plain", opt, (int)len, spec);
    }
    bool all = name_len == 3 && strncmp(spec, "all", 3) == 0;
    for (int ph = 0; ph < PH_COUNT; ph++) {
        if (!all && (strlen(phase_names[ph]) != name_len
                     || strncmp(phase_names[ph], spec, name_len) != 0))
            continue;
        for (int t = 0; t < 2; t++)
            if (tr[t])
                out[n++] = &O.faults[ph][t];
    }
    if (n == 0)
        die(64, "%s: unknown phase \"%.*s\" (greeting, ehlo, helo, starttls, mail, rcpt, data, "
            "eod, rset, noop, quit, other, all)", opt, (int)name_len, spec);
    return n;
}

/* For "[PHASE:]VALUE" arguments: selects the faults and returns VALUE. */
static const char *phase_and_value(const char *opt, const char *arg, struct fault *out[], int *n)
{
    const char *colon = strchr(arg, ':');

    if (colon == NULL) {
        *n = select_faults(opt, "all", 3, out);
        return arg;
    }
    *n = select_faults(opt, arg, (size_t)(colon - arg), out);
    return colon + 1;
}

static void set_action(const char *opt, const char *spec, enum action a)
{
    struct fault *f[PH_COUNT * 2];
    int n = select_faults(opt, spec, strlen(spec), f);

    for (int i = 0; i < n; i++)
        f[i]->action = a;
}

static void set_reply(const char *opt, const char *phase, size_t len, const char *line)
{
    struct fault *f[PH_COUNT * 2];
    int n = select_faults(opt, phase, len, f);
    const struct bytes *b = unescape(line, true);

    for (int i = 0; i < n; i++)
        f[i]->reply = b;
}

enum {
    OPT_LISTEN = 256, OPT_HOSTNAME, OPT_SPOOL, OPT_LOG, OPT_MAX_CONNS, OPT_CERT, OPT_KEY,
    OPT_NO_STARTTLS, OPT_NO_PIPELINING, OPT_NO_8BITMIME, OPT_NO_SMTPUTF8, OPT_NO_ENHANCED,
    OPT_SIZE, OPT_EXT, OPT_CHUNKING, OPT_REOFFER, OPT_REPLY, OPT_GREETING, OPT_EHLO_REPLY, OPT_MAIL_REPLY,
    OPT_DATA_REPLY, OPT_EOD_REPLY, OPT_STARTTLS_REPLY, OPT_RCPT_REPLY, OPT_INJECT,
    OPT_HANDSHAKE, OPT_PRIORITY, OPT_TICKETS, OPT_OCSP_RESPONSE, OPT_DROP_IN_DATA, OPT_DROP_MODE, OPT_STALL, OPT_CLOSE,
    OPT_ENDLESS_MULTILINE, OPT_ENDLESS_LINE, OPT_PACE, OPT_DRIP, OPT_NUL, OPT_BAD_CODE,
    OPT_DISAGREE, OPT_UNSOLICITED, OPT_SOAK, OPT_SOAK_RATE, OPT_SOAK_TLS, OPT_SOAK_STALL,
    OPT_EVENTS, OPT_ID_HEADER, OPT_HELP,
};

static const struct option long_options[] = {
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "hostname", required_argument, NULL, OPT_HOSTNAME },
    { "spool", required_argument, NULL, OPT_SPOOL },
    { "log", required_argument, NULL, OPT_LOG },
    { "max-conns", required_argument, NULL, OPT_MAX_CONNS },
    { "cert", required_argument, NULL, OPT_CERT },
    { "key", required_argument, NULL, OPT_KEY },
    { "no-starttls", no_argument, NULL, OPT_NO_STARTTLS },
    { "no-pipelining", no_argument, NULL, OPT_NO_PIPELINING },
    { "no-8bitmime", no_argument, NULL, OPT_NO_8BITMIME },
    { "no-smtputf8", no_argument, NULL, OPT_NO_SMTPUTF8 },
    { "no-enhanced", no_argument, NULL, OPT_NO_ENHANCED },
    { "size", required_argument, NULL, OPT_SIZE },
    { "ext", required_argument, NULL, OPT_EXT },
    { "chunking", no_argument, NULL, OPT_CHUNKING },
    { "reoffer-starttls", no_argument, NULL, OPT_REOFFER },
    { "reply", required_argument, NULL, OPT_REPLY },
    { "greeting", required_argument, NULL, OPT_GREETING },
    { "ehlo-reply", required_argument, NULL, OPT_EHLO_REPLY },
    { "mail-reply", required_argument, NULL, OPT_MAIL_REPLY },
    { "data-reply", required_argument, NULL, OPT_DATA_REPLY },
    { "eod-reply", required_argument, NULL, OPT_EOD_REPLY },
    { "starttls-reply", required_argument, NULL, OPT_STARTTLS_REPLY },
    { "rcpt-reply", required_argument, NULL, OPT_RCPT_REPLY },
    { "inject", required_argument, NULL, OPT_INJECT },
    { "handshake", required_argument, NULL, OPT_HANDSHAKE },
    { "priority", required_argument, NULL, OPT_PRIORITY },
    { "tickets", no_argument, NULL, OPT_TICKETS },
    { "ocsp-response", required_argument, NULL, OPT_OCSP_RESPONSE },
    { "drop-in-data", required_argument, NULL, OPT_DROP_IN_DATA },
    { "drop-mode", required_argument, NULL, OPT_DROP_MODE },
    { "stall", required_argument, NULL, OPT_STALL },
    { "close", required_argument, NULL, OPT_CLOSE },
    { "endless-multiline", required_argument, NULL, OPT_ENDLESS_MULTILINE },
    { "endless-line", required_argument, NULL, OPT_ENDLESS_LINE },
    { "pace", required_argument, NULL, OPT_PACE },
    { "drip", required_argument, NULL, OPT_DRIP },
    { "nul", optional_argument, NULL, OPT_NUL },
    { "bad-code", required_argument, NULL, OPT_BAD_CODE },
    { "disagree", optional_argument, NULL, OPT_DISAGREE },
    { "unsolicited", optional_argument, NULL, OPT_UNSOLICITED },
    { "soak", required_argument, NULL, OPT_SOAK },
    { "soak-rate", required_argument, NULL, OPT_SOAK_RATE },
    { "soak-tls", required_argument, NULL, OPT_SOAK_TLS },
    { "soak-stall", required_argument, NULL, OPT_SOAK_STALL },
    { "events", required_argument, NULL, OPT_EVENTS },
    { "id-header", required_argument, NULL, OPT_ID_HEADER },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv)
{
    static const char *const hs_names[] = {
        [HS_NORMAL] = "normal", [HS_ALERT] = "alert", [HS_CLOSE] = "close",
        [HS_GARBAGE] = "garbage", [HS_TLS10] = "tls10", [HS_TLS12] = "tls12",
        [HS_NOCIPHER] = "nocipher",
    };
    struct fault *f[PH_COUNT * 2];
    const char *v, *eq;
    int opt, n;

    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        const char *name = long_options[0].name;
        for (const struct option *o = long_options; o->name != NULL; o++)
            if (o->val == opt)
                name = o->name;
        switch (opt) {
        case OPT_LISTEN: O.listen = optarg; break;
        case OPT_HOSTNAME: O.hostname = optarg; break;
        case OPT_SPOOL: O.spool = optarg; break;
        case OPT_LOG: O.log = optarg; break;
        case OPT_MAX_CONNS: O.max_conns = parse_ulong(name, optarg); break;
        case OPT_CERT: O.cert = optarg; break;
        case OPT_KEY: O.key = optarg; break;
        case OPT_NO_STARTTLS: O.starttls = false; break;
        case OPT_NO_PIPELINING: O.pipelining = false; break;
        case OPT_NO_8BITMIME: O.eightbit = false; break;
        case OPT_NO_SMTPUTF8: O.smtputf8 = false; break;
        case OPT_NO_ENHANCED: O.enhanced = false; break;
        case OPT_SIZE: O.size = parse_ulong(name, optarg); break;
        case OPT_REOFFER: O.reoffer = true; break;
        case OPT_CHUNKING: O.chunking = true; break;
        case OPT_EXT: {
            bool tr[2] = { true, true };
            v = optarg;
            if (strncmp(v, "plain:", 6) == 0) {
                tr[1] = false;
                v += 6;
            } else if (strncmp(v, "tls:", 4) == 0) {
                tr[0] = false;
                v += 4;
            }
            for (int t = 0; t < 2; t++) {
                if (!tr[t])
                    continue;
                if (O.n_ext[t] == MAX_EXT)
                    die(64, "too many --ext");
                O.ext[t][O.n_ext[t]++] = v;
            }
            break;
        }
        case OPT_REPLY:
            if ((eq = strchr(optarg, '=')) == NULL)
                die(64, "--reply wants PHASE=LINE");
            set_reply(name, optarg, (size_t)(eq - optarg), eq + 1);
            break;
        case OPT_GREETING: set_reply(name, "greeting", 8, optarg); break;
        case OPT_EHLO_REPLY: set_reply(name, "ehlo", 4, optarg); break;
        case OPT_MAIL_REPLY: set_reply(name, "mail", 4, optarg); break;
        case OPT_DATA_REPLY: set_reply(name, "data", 4, optarg); break;
        case OPT_EOD_REPLY: set_reply(name, "eod", 3, optarg); break;
        case OPT_STARTTLS_REPLY: set_reply(name, "starttls", 8, optarg); break;
        case OPT_RCPT_REPLY:
            if ((eq = strchr(optarg, '=')) == NULL)
                die(64, "--rcpt-reply wants ADDR=LINE");
            if (O.n_rcpt_replies == MAX_RCPT_REPLIES)
                die(64, "too many --rcpt-reply");
            O.rcpt_replies[O.n_rcpt_replies].addr = xstrndup(optarg, (size_t)(eq - optarg));
            O.rcpt_replies[O.n_rcpt_replies++].reply = unescape(eq + 1, true);
            break;
        case OPT_INJECT: O.inject = unescape(optarg, false); break;
        case OPT_HANDSHAKE:
            for (n = 0; n < (int)(sizeof hs_names / sizeof hs_names[0]); n++)
                if (strcmp(optarg, hs_names[n]) == 0)
                    break;
            if (n == (int)(sizeof hs_names / sizeof hs_names[0]))
                die(64, "--handshake: normal, alert, close, garbage, tls10, tls12 or nocipher");
            O.handshake = (enum handshake_mode)n;
            break;
        case OPT_PRIORITY: O.priority = optarg; break;
        case OPT_TICKETS: O.tickets = true; break;
        case OPT_OCSP_RESPONSE: O.ocsp_response = optarg; break;
        case OPT_DROP_IN_DATA: {
            char num[32];
            const char *at = strchr(optarg, '@');
            size_t nl = at != NULL ? (size_t)(at - optarg) : strlen(optarg);
            snprintf(num, sizeof num, "%.*s", (int)nl, optarg);
            unsigned long bytes = parse_ulong(name, num);
            if (bytes == 0)
                die(64, "--drop-in-data wants at least 1 byte");
            if (at == NULL || strcmp(at, "@plain") == 0)
                O.drop_at[0] = bytes;
            if (at == NULL || strcmp(at, "@tls") == 0)
                O.drop_at[1] = bytes;
            if (at != NULL && strcmp(at, "@plain") != 0 && strcmp(at, "@tls") != 0)
                die(64, "--drop-in-data N[@tls|@plain]");
            break;
        }
        case OPT_DROP_MODE:
            if (strcmp(optarg, "close") == 0)
                O.drop_mode = DROP_CLOSE;
            else if (strcmp(optarg, "alert") == 0)
                O.drop_mode = DROP_ALERT;
            else if (strcmp(optarg, "rst") == 0)
                O.drop_mode = DROP_RST;
            else
                die(64, "--drop-mode: close, alert or rst");
            break;
        case OPT_STALL: set_action(name, optarg, ACT_STALL); break;
        case OPT_CLOSE: set_action(name, optarg, ACT_CLOSE); break;
        case OPT_ENDLESS_MULTILINE: set_action(name, optarg, ACT_ENDLESS_MULTILINE); break;
        case OPT_ENDLESS_LINE: set_action(name, optarg, ACT_ENDLESS_LINE); break;
        case OPT_PACE: O.pace_ms = (int)parse_ulong(name, optarg); break;
        case OPT_DRIP: {
            v = phase_and_value(name, optarg, f, &n);
            int ms = (int)parse_ulong(name, v);
            if (ms == 0)
                die(64, "--drip wants at least 1 ms");
            for (int i = 0; i < n; i++)
                f[i]->drip_ms = ms;
            break;
        }
        case OPT_BAD_CODE:
            v = phase_and_value(name, optarg, f, &n);
            for (int i = 0; i < n; i++)
                f[i]->bad_code = v;
            break;
        case OPT_NUL:
        case OPT_DISAGREE:
        case OPT_UNSOLICITED:
            v = optarg != NULL ? optarg : opt == OPT_UNSOLICITED ? "greeting" : "all";
            n = select_faults(name, v, strlen(v), f);
            for (int i = 0; i < n; i++) {
                if (opt == OPT_NUL)
                    f[i]->nul = true;
                else if (opt == OPT_DISAGREE)
                    f[i]->disagree = true;
                else
                    f[i]->unsolicited = true;
            }
            break;
        case OPT_SOAK:
            O.soak = true;
            O.soak_seed = parse_ulong(name, optarg);
            break;
        case OPT_SOAK_RATE:
            if ((O.soak_rate = parse_ulong(name, optarg)) > 1000)
                die(64, "--soak-rate wants a per mille, 0 to 1000");
            break;
        case OPT_SOAK_TLS:
            if ((O.soak_tls = parse_ulong(name, optarg)) > 100)
                die(64, "--soak-tls wants a per cent, 0 to 100");
            break;
        case OPT_SOAK_STALL: O.soak_stall_ms = parse_ulong(name, optarg); break;
        case OPT_EVENTS: O.events = optarg; break;
        case OPT_ID_HEADER:
            if (optarg[0] == '\0' || strchr(optarg, ':') != NULL)
                die(64, "--id-header wants a field name");
            O.id_header = optarg;
            break;
        case OPT_HELP:
            printf("usage: faultsrv [OPTION...]; see the comment at the top of "
                   "tests/servers/faultsrv.c or tests/servers/faultsrv.md\n");
            exit(0);
        default:
            die(64, "bad usage; see tests/servers/faultsrv.md");
        }
    }
    if (optind != argc)
        die(64, "unexpected argument \"%s\"", argv[optind]);
}

int main(int argc, char **argv)
{
    struct rlimit rl;

    parse_args(argc, argv);
    S.start = S.now = now_ms();
    signal(SIGPIPE, SIG_IGN);
    /* A benchmark sink holds thousands of connections. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setup_tls();
    if (O.spool != NULL && mkdir(O.spool, 0700) != 0 && errno != EEXIST)
        die(1, "--spool %s: %s", O.spool, strerror(errno));
    if (O.log != NULL && (S.log = fopen(O.log, "w")) == NULL)
        die(1, "--log %s: %s", O.log, strerror(errno));
    if (O.events != NULL && (S.events = fopen(O.events, "w")) == NULL)
        die(1, "--events %s: %s", O.events, strerror(errno));
    if ((S.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die(1, "epoll_create1: %s", strerror(errno));
    start_listening();
    serve();
    return 0;
}
