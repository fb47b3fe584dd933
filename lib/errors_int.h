/*
 * errors_int.h — codes internal modules return that no public function
 * does, from numbers the public enum retired (common.h): the AUTH client's
 * "the server broke the exchange" (sasl.c; a session ends the connection
 * for it), and the blocking resolvers' failures (resolve*.c; a driver
 * defers for them).
 */
#ifndef SMTPOUT_ERRORS_INT_H
#define SMTPOUT_ERRORS_INT_H

#define ERR_PROTOCOL (-506) /* the server violated the protocol */
#define ERR_TIMEOUT (-507)  /* no answer in time */
#define ERR_RESOLVE (-516)  /* name resolution failed */

/* smtpout_strerror() for public codes, and a text for the ones above. */
const char *error_text(int code);

#endif
