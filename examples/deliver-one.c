/* The README's example: deliver one message under a policy file. */
#include <smtpout/smtpout.h>
#include <stdio.h>

int main(int argc, char **argv)
{
  static const char msg[] = "Subject: hello\r\n\r\nHello from smtpout.\r\n";
  smtpout_config *cfg;
  smtpout_delivery *d;
  char err[1024];
  if (argc != 5)
    return fprintf(stderr, "usage: %s POLICY.ini HOST FROM TO\n", argv[0]), 64;
  if (smtpout_config_load_file(&cfg, argv[1], err, sizeof err) != 0)
    return fprintf(stderr, "%s", err), 78;
  smtpout_delivery_new(&d, cfg);
  smtpout_config_unref(cfg);                /* d holds its own reference */
  smtpout_delivery_set_server(d, argv[2], 25);
  smtpout_delivery_set_sender(d, argv[3]);
  smtpout_delivery_add_recipient(d, argv[4]);
  smtpout_delivery_set_body(d, (const uint8_t *)msg, sizeof msg - 1);
  int rv = smtpout_delivery_run(d);         /* blocking: connect, TLS, send */
  const smtpout_result *r = smtpout_delivery_result(d, 0);
  if (rv != 0)                              /* nothing could be attempted */
    fprintf(stderr, "%s\n", smtpout_strerror(rv));
  else
    printf("%s: %s %d %s\n", smtpout_result_recipient(r),
           smtpout_status_name(smtpout_result_status(r)),
           smtpout_result_code(r), smtpout_result_text(r));
  smtpout_delivery_free(d);
  return rv == 0 ? 0 : 70;
}
