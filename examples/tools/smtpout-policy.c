/*
 * smtpout-policy — show which TLS policy applies to a destination, and
 * why; or check a configuration file.
 *
 *   smtpout-policy --config FILE --domain D [--domain D ...] [--mx M] [--json]
 *   smtpout-policy --config FILE --check
 *
 * Exit status (sysexits.h): 0 success; 64 bad usage; 65 a --domain or
 * --mx that is not a valid host name; 78 the configuration cannot be
 * loaded (each problem printed to stderr as FILE:LINE: message).
 *
 * Uses only the public API.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtpout/smtpout.h>

#include "json.h"

enum {
  EXIT_USAGE = 64,    /* EX_USAGE */
  EXIT_DATAERR = 65,  /* EX_DATAERR */
  EXIT_SOFTWARE = 70, /* EX_SOFTWARE */
  EXIT_CONFIG = 78    /* EX_CONFIG */
};

#define MAX_DOMAINS 1000

static void usage(FILE *out)
{
  fputs("usage: smtpout-policy --config FILE --domain DOMAIN [--domain ...]"
        " [--mx HOST] [--json]\n"
        "       smtpout-policy --config FILE --mx HOST [--json]\n"
        "       smtpout-policy --config FILE --check\n"
        "\n"
        "Resolves the starttls, allow-invalid-certs and dane policy for\n"
        "mail to the recipient DOMAIN(s) through the MX HOST, and says\n"
        "which rule set each knob.  With several domains the strictest policy of\n"
        "them applies.  --check only validates FILE.\n",
        out);
}

static void print_json(const smtpout_policy *p, const char *const *domains,
                       size_t ndomains, const char *mx)
{
  static const char *const keys[3] = {"starttls", "allow_invalid_certs",
                                      "dane"};
  struct json j;
  json_init(&j, stdout);
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, smtpout_starttls_name(smtpout_policy_starttls(p)));
  json_key(&j, "allow_invalid_certs");
  json_bool(&j, smtpout_policy_allow_invalid_certs(p));
  json_key(&j, "dane");
  json_string(&j, smtpout_dane_name(smtpout_policy_dane(p)));
  json_key(&j, "source");
  json_object_begin(&j);
  for (int k = 0; k < 3; k++) {
    json_key(&j, keys[k]);
    json_string(&j, smtpout_policy_source(p, k));
  }
  json_object_end(&j);
  json_key(&j, "rule");
  json_object_begin(&j);
  for (int k = 0; k < 3; k++) {
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
  json_key(&j, "explain");
  json_string(&j, smtpout_policy_explain(p));
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

int main(int argc, char **argv)
{
  static const struct option options[] = {
    {"config", required_argument, NULL, 'c'},
    {"domain", required_argument, NULL, 'd'},
    {"mx", required_argument, NULL, 'm'},
    {"json", no_argument, NULL, 'j'},
    {"check", no_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  const char *config_path = NULL, *mx = NULL;
  static const char *domains[MAX_DOMAINS];
  size_t ndomains = 0;
  int json = 0, check = 0, opt;

  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
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
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  if (optind < argc || config_path == NULL ||
      (check && (ndomains > 0 || mx != NULL || json)) ||
      (!check && ndomains == 0 && mx == NULL)) {
    usage(stderr);
    return EXIT_USAGE;
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
    print_json(policy, domains, ndomains, mx);
  else
    fputs(smtpout_policy_explain(policy), stdout);
  smtpout_policy_free(policy);
  return 0;
}
