/*
 * smtpout-tlsrpt — build RFC 8460 aggregate TLS reports from TLS-RPT event
 * files.
 *
 *   smtpout-tlsrpt --events FILE [--events FILE ...] --organization ORG
 *                  --contact EMAIL --date YYYY-MM-DD [--domain D]
 *
 * Reads every event file (any number of processes may have written them;
 * "-" is standard input), keeps the events of the UTC day DATE, and prints
 * one report per report domain (only D with --domain), one JSON object
 * per line, in order of domain name.  The report-id is
 * "DATE_DOMAIN_CONTACT".  Malformed lines are skipped and counted on
 * standard error.
 *
 * Exit status (sysexits.h): 0 success (also when there is nothing to
 * report); 64 bad usage (a missing option, a date that does not exist);
 * 65 a --domain that is not a domain name, or an --organization or
 * --contact that cannot go into a report (empty, control characters, not
 * UTF-8, over 1024 bytes); 66 an events file that cannot be opened;
 * 70 out of memory; 74 a read error.
 *
 * Uses only the public API.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtpout/smtpout.h>

enum {
  EXIT_USAGE = 64,    /* EX_USAGE */
  EXIT_DATAERR = 65,  /* EX_DATAERR */
  EXIT_NOINPUT = 66,  /* EX_NOINPUT */
  EXIT_SOFTWARE = 70, /* EX_SOFTWARE */
  EXIT_IOERR = 74     /* EX_IOERR */
};

#define MAX_FILES 1000

static void usage(FILE *out)
{
  fputs("usage: smtpout-tlsrpt --events FILE [--events FILE ...]\n"
        "                      --organization ORG --contact EMAIL\n"
        "                      --date YYYY-MM-DD [--domain DOMAIN]\n"
        "\n"
        "Merges the TLS-RPT events of the UTC day YYYY-MM-DD from every\n"
        "FILE (\"-\" for standard input) into RFC 8460 aggregate reports,\n"
        "one JSON object per line for each report domain (DOMAIN only).\n"
        "\n"
        "  --events FILE        an event file; repeat for more\n"
        "  --organization ORG   the report's organization-name\n"
        "  --contact EMAIL      the report's contact-info\n"
        "  --date YYYY-MM-DD    the UTC day reported\n"
        "  --domain DOMAIN      only the report for this policy domain\n"
        "  --version            print the version and exit\n"
        "  --help               print this help and exit\n",
        out);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD" (1970 to 9999) to the wall-clock ms of its midnight UTC. */
static int parse_date(const char *s, uint64_t *ms)
{
  unsigned y, m, d;
  char tail;
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
      sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3)
    return -1;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
      return -1;
  static const unsigned mdays[] = {31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
  unsigned leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || m < 1 || m > 12 || d < 1 ||
      d > mdays[m - 1] + (m == 2 ? leap : 0))
    return -1;
  *ms = (uint64_t)days_from_civil(y, m, d) * 86400000ULL;
  return 0;
}

/* Feeds one file to the builder.  Returns 0 or an exit status. */
static int read_events(smtpout_tlsrpt_report *r, const char *path)
{
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "smtpout-tlsrpt: %s: %s\n", path, strerror(errno));
    return EXIT_NOINPUT;
  }
  static char chunk[65536];
  size_t n;
  int status = 0;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (smtpout_tlsrpt_report_feed(r, chunk, n) != 0) {
      status = EXIT_SOFTWARE;
      break;
    }
  }
  if (status == 0 && ferror(f)) {
    fprintf(stderr, "smtpout-tlsrpt: %s: read error\n", path);
    status = EXIT_IOERR;
  }
  if (status == 0 && smtpout_tlsrpt_report_feed_eof(r) != 0)
    status = EXIT_SOFTWARE;
  if (f != stdin)
    fclose(f);
  if (status == EXIT_SOFTWARE)
    fprintf(stderr, "smtpout-tlsrpt: out of memory\n");
  return status;
}

int main(int argc, char **argv)
{
  static const struct option options[] = {
    {"events", required_argument, NULL, 'e'},
    {"organization", required_argument, NULL, 'o'},
    {"contact", required_argument, NULL, 'c'},
    {"date", required_argument, NULL, 't'},
    {"domain", required_argument, NULL, 'd'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  static const char *files[MAX_FILES];
  size_t nfiles = 0;
  const char *org = NULL, *contact = NULL, *date = NULL, *domain = NULL;
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 'V': printf("smtpout-tlsrpt %s\n", smtpout_version()); return 0;
    case 'e':
      if (nfiles == MAX_FILES) {
        fprintf(stderr, "smtpout-tlsrpt: at most %d --events\n", MAX_FILES);
        return EXIT_USAGE;
      }
      files[nfiles++] = optarg;
      break;
    case 'o': org = optarg; break;
    case 'c': contact = optarg; break;
    case 't': date = optarg; break;
    case 'd': domain = optarg; break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc || nfiles == 0 || org == NULL || contact == NULL ||
      date == NULL) {
    usage(stderr);
    return EXIT_USAGE;
  }
  uint64_t day;
  if (parse_date(date, &day) != 0) {
    fprintf(stderr, "smtpout-tlsrpt: --date %s: not a date YYYY-MM-DD "
                    "from 1970 to 9999\n", date);
    return EXIT_USAGE;
  }

  smtpout_tlsrpt_report *r = NULL;
  int rc = smtpout_tlsrpt_report_new(&r, domain, day);
  if (rc == SMTPOUT_ERR_BAD_NAME) {
    fprintf(stderr, "smtpout-tlsrpt: --domain %s: not a valid domain name\n",
            domain);
    return EXIT_DATAERR;
  }
  if (rc != 0) {
    fprintf(stderr, "smtpout-tlsrpt: %s\n", smtpout_strerror(rc));
    return EXIT_SOFTWARE;
  }
  int status = 0;
  for (size_t i = 0; i < nfiles && status == 0; i++)
    status = read_events(r, files[i]);

  size_t ndomains = smtpout_tlsrpt_report_domain_count(r);
  for (size_t i = 0; i < ndomains && status == 0; i++) {
    const char *name = smtpout_tlsrpt_report_domain(r, i);
    char id[2200];
    const char *json;
    size_t len;
    if (name == NULL) {
      status = EXIT_SOFTWARE;
      break;
    }
    snprintf(id, sizeof(id), "%s_%s_%s", date, name, contact);
    rc = smtpout_tlsrpt_report_render(r, i, org, contact, id, &json, &len);
    if (rc == SMTPOUT_ERR_INVALID_ARGUMENT) {
      fprintf(stderr, "smtpout-tlsrpt: --organization and --contact must be "
                      "1 to 1024 bytes of UTF-8 without control "
                      "characters\n");
      status = EXIT_DATAERR;
    } else if (rc != 0) {
      fprintf(stderr, "smtpout-tlsrpt: %s\n", smtpout_strerror(rc));
      status = EXIT_SOFTWARE;
    } else {
      fwrite(json, 1, len, stdout);
      putchar('\n');
    }
  }
  if (status == 0 && fflush(stdout) != 0) {
    fprintf(stderr, "smtpout-tlsrpt: write error\n");
    status = EXIT_IOERR;
  }

  uint64_t bad = smtpout_tlsrpt_report_counter(r, SMTPOUT_TLSRPT_COUNTER_MALFORMED);
  uint64_t dropped = smtpout_tlsrpt_report_counter(r, SMTPOUT_TLSRPT_COUNTER_DROPPED);
  if (bad > 0)
    fprintf(stderr, "smtpout-tlsrpt: %llu malformed line(s) skipped\n",
            (unsigned long long)bad);
  if (dropped > 0)
    fprintf(stderr, "smtpout-tlsrpt: %llu event(s) dropped at the memory "
                    "bound\n", (unsigned long long)dropped);
  if (status == 0 && ndomains == 0)
    fprintf(stderr, "smtpout-tlsrpt: no events for %s%s%s\n", date,
            domain ? " and " : "", domain ? domain : "");
  smtpout_tlsrpt_report_free(r);
  return status;
}
