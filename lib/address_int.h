/*
 * address_int.h — checks on envelope addresses before they go on the wire.
 */
#ifndef SMTPOUT_ADDRESS_INT_H
#define SMTPOUT_ADDRESS_INT_H

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets. */
#define ADDRESS_MAX_LEN 254

#include <stddef.h>

/* smtpout_address_check() of a non-NULL address that also gives, when it
 * passes, its length and whether it has non-ASCII octets (it needs
 * SMTPUTF8). */
int address_scan(const char *address, size_t *plen, int *putf8);

/* The domain part (after the last '@') of a checked address. */
const char *address_domain(const char *address);

#endif
