// The public headers compile as C++ (with -Wall -Wextra -pedantic -Werror)
// and declare C linkage: this file includes each header on its own and the
// umbrella one, and links calls into every header's functions.  Without
// extern "C" the link fails on mangled names.
#include <smtpout/common.h>
#include <smtpout/config.h>
#include <smtpout/session.h>
#include <smtpout/message.h>
#include <smtpout/deliver.h>
#include <smtpout/smtpout.h>
#include <smtpout/smtpout.h> // twice: the include guards work

#include <cstdio>
#include <cstring>

static_assert(SMTPOUT_ERR_INVALID_ARGUMENT < 0, "errors are negative");
static_assert(SMTPOUT_STARTTLS_REQUIRE == 2, "enum values are the ABI");
static_assert(sizeof(smtpout_on_result_callback) == sizeof(void (*)()),
              "callback types are plain function pointers");

extern "C" {
static void on_result(smtpout_session *, const smtpout_result *, void *) {}
}

int main()
{
  int failures = 0;
  // common.h
  if (std::strcmp(smtpout_starttls_name(SMTPOUT_STARTTLS_OPTIONAL),
                  "optional") != 0)
    failures++;
  std::printf("smtpout %s: %s\n", smtpout_version(),
              smtpout_strerror(SMTPOUT_ERR_NOMEM));
  // config.h
  smtpout_config *cfg = nullptr;
  if (smtpout_config_new(&cfg) != 0)
    failures++;
  // session.h
  smtpout_callbacks *cbs = nullptr;
  smtpout_session *s = nullptr;
  if (smtpout_callbacks_new(&cbs) != 0)
    failures++;
  smtpout_callbacks_set_on_result(cbs, on_result);
  if (smtpout_session_new(&s, "mx.test.example", cfg, cbs, nullptr) != 0)
    failures++;
  if (smtpout_session_expiry(s) != SMTPOUT_NO_EXPIRY)
    failures++;
  smtpout_session_free(s);
  smtpout_callbacks_free(cbs);
  // message.h
  uint64_t size = 0;
  uint32_t flags = 0;
  if (smtpout_message_inspect(reinterpret_cast<const uint8_t *>("a\n"), 2,
                              &size, &flags) != 0 ||
      size != 3 || flags != 0)
    failures++;
  // deliver.h
  smtpout_delivery *d = nullptr;
  if (smtpout_delivery_new(&d, cfg) != 0)
    failures++;
  smtpout_delivery_free(d);
  smtpout_config_unref(cfg);
  return failures == 0 ? 0 : 1;
}
