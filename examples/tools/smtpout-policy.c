/*
 * smtpout-policy — show which TLS policy applies to a destination, and
 * why; or check a configuration file.
 *
 *   smtpout-policy --config FILE --domain D [--domain D ...] [--mx M] [--json]
 *   smtpout-policy --config FILE --domain D --resolve [--resolver H:P]
 *                  [--dnssec MODE] [--json]
 *   smtpout-policy --config FILE -q FILE|-
 *   smtpout-policy --config FILE --check
 *
 * With --resolve it asks the DNS (and the MTA-STS policy host) as a
 * delivery to D would, without connecting to any MX host
 * (smtpout_delivery_resolve()), and shows the MX hosts, the DNSSEC state,
 * the MTA-STS policy, and each hop with its TLS requirement and the rule
 * or record that decided it.
 *
 * With -q (as postmap -q -) it reads "DOMAIN [MX]" lines and prints one
 * JSON line per query, loading the configuration once: auditing many
 * destinations against a large map costs one load, not one per query.
 *
 * Exit status (sysexits.h): 0 success; 64 bad usage; 65 a --domain or
 * --mx (or a query) that is not a valid host name; 66 an unreadable query
 * file; 74 a read error; 78 the configuration cannot be loaded (each
 * problem printed to stderr as FILE:LINE: message), or its resolver
 * cannot be set up.
 *
 * Uses only the public API.
 */
/* POSIX.1-2008 (clock_gettime, getaddrinfo, strndup, ...) and the BSD/Linux
 * extras (TCP_QUICKACK, SOCK_NONBLOCK) under a strict `cc -std=c11`. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <smtpout/smtpout.h>

#include "json.h"

enum {
  EXIT_USAGE = 64,    /* EX_USAGE */
  EXIT_DATAERR = 65,  /* EX_DATAERR */
  EXIT_NOINPUT = 66,  /* EX_NOINPUT */
  EXIT_SOFTWARE = 70, /* EX_SOFTWARE */
  EXIT_IOERR = 74,    /* EX_IOERR */
  EXIT_CONFIG = 78    /* EX_CONFIG */
};

/* The longest query line: two names of at most 253 octets (more in
 * U-labels), with room to spare. */
#define QUERY_LINE_MAX 4096

#define MAX_DOMAINS 1000

static void usage(FILE *out)
{
  fputs("usage: smtpout-policy --config FILE --domain DOMAIN [--domain ...]"
        " [--mx HOST] [--json]\n"
        "       smtpout-policy --config FILE --mx HOST [--json]\n"
        "       smtpout-policy --config FILE --domain DOMAIN --resolve "
        "[--resolver HOST:PORT]\n"
        "                      [--dnssec MODE] [--json]\n"
        "       smtpout-policy --config FILE -q FILE|-\n"
        "       smtpout-policy --config FILE --check\n"
        "\n"
        "Resolves the starttls, allow-invalid-certs, dane and mta-sts policy for\n"
        "mail to the recipient DOMAIN(s) through the MX HOST, and says\n"
        "which rule set each knob.  With several domains the strictest policy of\n"
        "them applies.\n"
        "\n"
        "  --config FILE     the configuration (docs/configuration.md)\n"
        "  --domain DOMAIN   a recipient domain; repeat for more\n"
        "  --mx HOST         the MX host the mail goes through\n"
        "  --resolve         ask the DNS: MX hosts, DNSSEC, DANE, MTA-STS "
        "and each hop's\n"
        "                    TLS requirement (no connection to any MX)\n"
        "  --resolver H:P    with --resolve: a nameserver instead of the "
        "configuration's\n"
        "  --dnssec MODE     with --resolve: trust-ad, validate or off\n"
        "  --json            one JSON object instead of the explanation\n"
        "  -q, --query FILE  read \"DOMAIN [MX]\" lines from FILE (\"-\": "
        "standard\n"
        "                    input) and print one JSON line for each\n"
        "  --check           only validate FILE\n"
        "  --version         print the version and exit\n"
        "  --help            print this help and exit\n",
        out);
}

/* The --json object; with -q without "explain", which would make most of
 * a batch's output and repeats what "source" and "rule" say. */
static void print_json(const smtpout_policy *p, const char *const *domains,
                       size_t ndomains, const char *mx, int explain)
{
  /* Indexed by enum smtpout_knob. */
  static const char *const keys[] = {"starttls", "allow_invalid_certs",
                                     "dane", "mta_sts"};
  const int nkeys = (int)(sizeof(keys) / sizeof(keys[0]));
  struct json j;
  json_init(&j, stdout);
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, smtpout_starttls_name(smtpout_policy_starttls(p)));
  json_key(&j, "allow_invalid_certs");
  json_bool(&j, smtpout_policy_allow_invalid_certs(p));
  json_key(&j, "dane");
  json_string(&j, smtpout_dane_name(smtpout_policy_dane(p)));
  json_key(&j, "mta_sts");
  json_string(&j, smtpout_mta_sts_name(smtpout_policy_mta_sts(p)));
  json_key(&j, "source");
  json_object_begin(&j);
  for (int k = 0; k < nkeys; k++) {
    json_key(&j, keys[k]);
    json_string(&j, smtpout_policy_source(p, k));
  }
  json_object_end(&j);
  json_key(&j, "rule");
  json_object_begin(&j);
  for (int k = 0; k < nkeys; k++) {
    json_key(&j, keys[k]);
    json_string(&j, smtpout_policy_rule(p, k));
  }
  json_object_end(&j);
  json_key(&j, "domains");
  json_array_begin(&j);
  for (size_t i = 0; i < ndomains; i++)
    json_string(&j, domains[i]);
  json_array_end(&j);
  json_key(&j, "mx");
  json_string(&j, mx);
  if (explain) {
    json_key(&j, "explain");
    json_string(&j, smtpout_policy_explain(p));
  }
  json_object_end(&j);
  putchar('\n');
}

/* Names every argument that is not a valid host or domain name. */
static void report_bad_names(const char *const *domains, size_t ndomains,
                             const char *mx)
{
  smtpout_policy *p = NULL;
  for (size_t i = 0; i < ndomains; i++) {
    if (smtpout_policy_resolve(&p, NULL, &domains[i], 1, NULL) ==
        SMTPOUT_ERR_BAD_NAME)
      fprintf(stderr, "smtpout-policy: --domain %s: not a valid domain "
                      "name\n", domains[i]);
    smtpout_policy_free(p);
    p = NULL;
  }
  if (mx != NULL &&
      smtpout_policy_resolve(&p, NULL, NULL, 0, mx) == SMTPOUT_ERR_BAD_NAME)
    fprintf(stderr, "smtpout-policy: --mx %s: not a valid host name\n", mx);
  smtpout_policy_free(p);
}

/* A query that cannot be answered: the line, and why. */
static void print_query_error(const char *line, const char *why)
{
  struct json j;
  json_init(&j, stdout);
  json_object_begin(&j);
  json_key(&j, "query");
  json_string(&j, line);
  json_key(&j, "error");
  json_string(&j, why);
  json_object_end(&j);
  putchar('\n');
}

/* Answers one "DOMAIN [MX]" line ("-" for no domain).  Returns 0, or
 * EXIT_DATAERR for a line that is not a query or names a bad name. */
static int query_one(const smtpout_config *config, char *line)
{
  char *save = NULL, *copy = strdup(line);
  if (copy == NULL)
    return EXIT_SOFTWARE;
  const char *domain = strtok_r(copy, " \t", &save);
  const char *mx = strtok_r(NULL, " \t", &save);
  int ex = 0;
  if (strtok_r(NULL, " \t", &save) != NULL) {
    print_query_error(line, "expected DOMAIN [MX]");
    ex = EXIT_DATAERR;
  } else {
    size_t nd = strcmp(domain, "-") != 0;
    if (!nd && mx == NULL) {
      print_query_error(line, "\"-\" (no domain) needs an MX");
      ex = EXIT_DATAERR;
    } else {
      smtpout_policy *p = NULL;
      int rv = smtpout_policy_resolve(&p, config, &domain, nd, mx);
      if (rv == 0) {
        print_json(p, &domain, nd, mx, 0);
      } else if (rv == SMTPOUT_ERR_BAD_NAME) {
        smtpout_policy *q = NULL;
        int bad_mx = mx && smtpout_policy_resolve(&q, NULL, NULL, 0, mx) ==
                               SMTPOUT_ERR_BAD_NAME;
        smtpout_policy_free(q);
        print_query_error(line, bad_mx ? "the MX is not a valid host name"
                                       : "the domain is not a valid "
                                         "domain name");
        ex = EXIT_DATAERR;
      } else {
        print_query_error(line, smtpout_strerror(rv));
        ex = EXIT_SOFTWARE;
      }
      smtpout_policy_free(p);
    }
  }
  free(copy);
  return ex;
}

/*
 * Reads query lines from `fd`, one JSON line out for each (blank lines and
 * "#" comments get none), in order.  Standard output is flushed before
 * every read that may block, never after each line: a batch goes out in
 * large writes, and a program that writes one query and waits for its
 * answer (a coprocess) still gets it.  Returns the exit status: the worst
 * of the queries', or EXIT_IOERR.
 */
static int query_lines(const smtpout_config *config, int fd)
{
  static char buf[65536];
  char line[QUERY_LINE_MAX + 1];
  size_t len = 0, lineno = 0;
  int too_long = 0, ex = 0, eof = 0;
  size_t have = 0, pos = 0;
  while (!eof || pos < have) {
    if (pos == have) {
      fflush(stdout);
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        fprintf(stderr, "smtpout-policy: reading queries: %s\n",
                strerror(errno));
        return EXIT_IOERR;
      }
      have = (size_t)n;
      pos = 0;
      if (n == 0) {
        eof = 1;
        if (len == 0 && !too_long)
          break;
        /* the last line, without its newline */
      }
    }
    int end = eof;
    while (!end && pos < have) {
      char c = buf[pos++];
      if (c == '\n')
        end = 1;
      else if (len < QUERY_LINE_MAX)
        line[len++] = c;
      else
        too_long = 1;
    }
    if (!end)
      continue;
    lineno++;
    line[len] = '\0';
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
      line[--len] = '\0';
    char *q = line + strspn(line, " \t");
    int rv = 0;
    if (too_long) {
      fprintf(stderr, "smtpout-policy: query line %zu: longer than %d "
                      "characters\n", lineno, QUERY_LINE_MAX);
      print_query_error("", "line too long");
      rv = EXIT_DATAERR;
    } else if (memchr(line, '\0', len) != NULL) {
      print_query_error("", "NUL character in line");
      rv = EXIT_DATAERR;
    } else if (*q != '\0' && *q != '#') {
      rv = query_one(config, q);
    }
    if (rv == EXIT_SOFTWARE)
      return rv;
    if (rv > ex)
      ex = rv;
    len = 0;
    too_long = 0;
    if (eof)
      break;
  }
  fflush(stdout);
  return ex;
}

/* --resolve: a delivery's route, resolved without connecting. */
static int resolve(smtpout_config *config, const char *domain,
                   const char *resolvers, int dnssec, int json)
{
  smtpout_delivery *d = NULL;
  int rv = smtpout_delivery_new(&d, config);
  if (rv == 0)
    rv = smtpout_delivery_set_domain(d, domain);
  if (rv == 0 && resolvers)
    rv = smtpout_delivery_set_resolver(d, resolvers);
  if (rv == 0 && dnssec >= 0)
    rv = smtpout_delivery_set_dnssec_mode(d, dnssec);
  if (rv == SMTPOUT_ERR_INVALID_ARGUMENT) {
    fprintf(stderr, "smtpout-policy: bad %s\n",
            dnssec >= 0 ? "--resolver or --dnssec (validate needs a build "
                          "with libunbound)"
                        : "--resolver");
    smtpout_delivery_free(d);
    return EXIT_USAGE;
  }
  if (rv == 0)
    rv = smtpout_delivery_resolve(d);
  if (rv != 0) {
    smtpout_delivery_free(d);
    if (rv == SMTPOUT_ERR_BAD_NAME) {
      fprintf(stderr, "smtpout-policy: --domain %s: not a valid domain "
                      "name\n", domain);
      return EXIT_DATAERR;
    }
    fprintf(stderr, "smtpout-policy: %s\n",
            rv == SMTPOUT_ERR_CONFIG ? "the DNS resolver could not be set up"
                                     : smtpout_strerror(rv));
    return rv == SMTPOUT_ERR_CONFIG ? EXIT_CONFIG : EXIT_SOFTWARE;
  }
  const smtpout_route *r = smtpout_delivery_route(d);
  size_t nmx = smtpout_route_mx_count(r), nhops = 0;
  const char *dnssec_name = smtpout_dnssec_name(smtpout_route_dnssec(r));
  if (json) {
    struct json j;
    json_init(&j, stdout);
    json_object_begin(&j);
    json_key(&j, "domain");
    json_string(&j, smtpout_route_domain(r));
    json_key(&j, "dnssec");
    json_string(&j, dnssec_name);
    json_key(&j, "implicit_mx");
    json_bool(&j, smtpout_route_implicit_mx(r));
    json_key(&j, "mx");
    json_array_begin(&j);
    for (size_t i = 0; i < nmx; i++) {
      json_object_begin(&j);
      json_key(&j, "name");
      json_string(&j, smtpout_route_mx_name(r, i));
      json_key(&j, "preference");
      json_int(&j, smtpout_route_mx_preference(r, i));
      json_object_end(&j);
    }
    json_array_end(&j);
    json_key(&j, "sts");
    json_object_begin(&j);
    json_key(&j, "mode");
    json_string(&j, smtpout_sts_mode_name(smtpout_route_sts_mode(r)));
    json_key(&j, "id");
    json_string(&j, smtpout_route_sts_id(r)[0] ? smtpout_route_sts_id(r)
                                               : NULL);
    json_key(&j, "explain");
    json_string(&j, smtpout_route_sts_explain(r));
    json_object_end(&j);
    json_key(&j, "hops");
    json_array_begin(&j);
    for (size_t i = 0; i < smtpout_delivery_attempt_count(d); i++) {
      const smtpout_attempt *a = smtpout_delivery_attempt(d, i);
      json_object_begin(&j);
      json_key(&j, "mx");
      json_string(&j, smtpout_attempt_mx(a));
      json_key(&j, "address");
      json_string(&j, smtpout_attempt_address(a));
      json_key(&j, "tls_requirement");
      json_string(&j, smtpout_tls_requirement_name(
                          smtpout_attempt_tls_requirement(a)));
      json_key(&j, "tls_source");
      json_string(&j,
                  smtpout_tls_source_name(smtpout_attempt_tls_source(a)));
      json_key(&j, "dane");
      json_string(&j,
                  smtpout_dane_status_name(smtpout_attempt_dane_status(a)));
      json_key(&j, "tlsa_records");
      json_int(&j, (long long)smtpout_attempt_tlsa_count(a));
      json_key(&j, "sts_mode");
      json_string(&j, smtpout_sts_mode_name(smtpout_attempt_sts_mode(a)));
      json_key(&j, "explain");
      json_string(&j, smtpout_attempt_explain(a));
      json_object_end(&j);
    }
    json_array_end(&j);
    /* Without a hop the route's verdict says why: a null MX, no such
     * domain, a DNS failure, DANE or MTA-STS that no host satisfies. */
    json_key(&j, "verdict");
    if (smtpout_delivery_attempt_count(d) == 0 && smtpout_route_status(r)) {
      json_object_begin(&j);
      json_key(&j, "status");
      json_string(&j, smtpout_status_name(smtpout_route_status(r)));
      json_key(&j, "enhanced");
      json_string(&j, smtpout_route_enhanced(r));
      json_key(&j, "text");
      json_string(&j, smtpout_route_text(r));
      json_object_end(&j);
    } else {
      json_null(&j);
    }
    json_object_end(&j);
    putchar('\n');
  } else {
    printf("recipient domain: %s\n", smtpout_route_domain(r));
    if (smtpout_route_implicit_mx(r))
      printf("MX: none; the domain itself (implicit MX)");
    else
      printf("MX:%s", nmx ? "" : " none");
    for (size_t i = 0; i < nmx && !smtpout_route_implicit_mx(r); i++)
      printf("%s %s (%d)", i ? "," : "", smtpout_route_mx_name(r, i),
             smtpout_route_mx_preference(r, i));
    printf("\nDNSSEC: %s (the MX answer)\n",
           dnssec_name ? dnssec_name : "no answer");
    printf("MTA-STS: %s%s%s\n",
           smtpout_sts_mode_name(smtpout_route_sts_mode(r)),
           smtpout_route_sts_id(r)[0] ? ", id " : "", smtpout_route_sts_id(r));
    if (smtpout_route_sts_explain(r)[0])
      printf("  %s\n", smtpout_route_sts_explain(r));
    for (size_t i = 0; i < smtpout_delivery_attempt_count(d); i++) {
      const smtpout_attempt *a = smtpout_delivery_attempt(d, i);
      printf("\nhop %zu: %s %s: %s\n", ++nhops, smtpout_attempt_mx(a),
             smtpout_attempt_address(a),
             smtpout_tls_requirement_name(smtpout_attempt_tls_requirement(a)));
      /* The explanation, indented. */
      const char *e = smtpout_attempt_explain(a);
      while (e && *e) {
        size_t n = strcspn(e, "\n");
        printf("  %.*s\n", (int)n, e);
        e += n + (e[n] == '\n');
      }
    }
    if (nhops == 0 && smtpout_route_status(r))
      printf("\nno hop: %s %s %s\n",
             smtpout_status_name(smtpout_route_status(r)),
             smtpout_route_enhanced(r), smtpout_route_text(r));
  }
  smtpout_delivery_free(d);
  return 0;
}

int main(int argc, char **argv)
{
  static const struct option options[] = {
    {"config", required_argument, NULL, 'c'},
    {"domain", required_argument, NULL, 'd'},
    {"mx", required_argument, NULL, 'm'},
    {"json", no_argument, NULL, 'j'},
    {"check", no_argument, NULL, 'k'},
    {"query", required_argument, NULL, 'q'},
    {"resolve", no_argument, NULL, 'r'},
    {"resolver", required_argument, NULL, 'R'},
    {"dnssec", required_argument, NULL, 'S'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  const char *config_path = NULL, *mx = NULL, *queries = NULL;
  static const char *domains[MAX_DOMAINS];
  size_t ndomains = 0;
  int json = 0, check = 0, do_resolve = 0, dnssec = -1, opt;
  static char resolvers[4096];

  while ((opt = getopt_long(argc, argv, "q:", options, NULL)) != -1) {
    switch (opt) {
    case 'q': queries = optarg; break;
    case 'V': printf("smtpout-policy %s\n", smtpout_version()); return 0;
    case 'c': config_path = optarg; break;
    case 'm':
      if (mx != NULL) {
        fputs("smtpout-policy: --mx given twice\n", stderr);
        return EXIT_USAGE;
      }
      mx = optarg;
      break;
    case 'd':
      if (ndomains == MAX_DOMAINS) {
        fputs("smtpout-policy: too many --domain options\n", stderr);
        return EXIT_USAGE;
      }
      domains[ndomains++] = optarg;
      break;
    case 'j': json = 1; break;
    case 'k': check = 1; break;
    case 'r': do_resolve = 1; break;
    case 'R': {
      size_t l = strlen(resolvers);
      if (l + strlen(optarg) + 2 > sizeof(resolvers)) {
        fputs("smtpout-policy: too many --resolver options\n", stderr);
        return EXIT_USAGE;
      }
      snprintf(resolvers + l, sizeof(resolvers) - l, "%s%s", l ? " " : "",
               optarg);
      break;
    }
    case 'S':
      dnssec = strcmp(optarg, "trust-ad") == 0   ? 0
               : strcmp(optarg, "validate") == 0 ? 1
               : strcmp(optarg, "off") == 0      ? 2
                                                 : -2;
      if (dnssec == -2) {
        fprintf(stderr, "smtpout-policy: bad --dnssec \"%s\" (accepted: "
                        "trust-ad, validate, off)\n", optarg);
        return EXIT_USAGE;
      }
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  if (optind < argc || config_path == NULL ||
      (check && (ndomains > 0 || mx != NULL || json || queries)) ||
      (queries && (ndomains > 0 || mx != NULL)) ||
      (!check && !queries && ndomains == 0 && mx == NULL) ||
      (do_resolve && (ndomains != 1 || mx != NULL || check || queries)) ||
      (!do_resolve && (resolvers[0] || dnssec >= 0))) {
    usage(stderr);
    return EXIT_USAGE;
  }
  int qfd = STDIN_FILENO;
  if (queries && strcmp(queries, "-") != 0 &&
      (qfd = open(queries, O_RDONLY | O_CLOEXEC)) < 0) {
    fprintf(stderr, "smtpout-policy: -q %s: %s\n", queries, strerror(errno));
    return EXIT_NOINPUT;
  }

  static char errbuf[65536];
  smtpout_config *config = NULL;
  int rv = smtpout_config_load_file(&config, config_path, errbuf,
                                    sizeof(errbuf));
  if (rv != 0) {
    if (errbuf[0] != '\0')
      fputs(errbuf, stderr);
    else
      fprintf(stderr, "%s: %s\n", config_path, smtpout_strerror(rv));
    return rv == SMTPOUT_ERR_NOMEM ? EXIT_SOFTWARE : EXIT_CONFIG;
  }
  if (check) {
    printf("%s: OK\n", config_path);
    smtpout_config_unref(config);
    return 0;
  }
  if (do_resolve) {
    rv = resolve(config, domains[0], resolvers[0] ? resolvers : NULL, dnssec,
                 json);
    smtpout_config_unref(config);
    return rv;
  }
  if (queries) {
    rv = query_lines(config, qfd);
    smtpout_config_unref(config);
    if (qfd != STDIN_FILENO)
      close(qfd);
    return rv;
  }

  smtpout_policy *policy = NULL;
  rv = smtpout_policy_resolve(&policy, config, domains, ndomains, mx);
  smtpout_config_unref(config);
  if (rv == SMTPOUT_ERR_BAD_NAME) {
    report_bad_names(domains, ndomains, mx);
    return EXIT_DATAERR;
  }
  if (rv != 0) {
    fprintf(stderr, "smtpout-policy: %s\n", smtpout_strerror(rv));
    return EXIT_SOFTWARE;
  }
  if (json)
    print_json(policy, domains, ndomains, mx, 1);
  else
    fputs(smtpout_policy_explain(policy), stdout);
  smtpout_policy_free(policy);
  return 0;
}
