/*
 * address_int.h — checks on envelope addresses before they go on the wire.
 */
#ifndef SMTPOUT_ADDRESS_INT_H
#define SMTPOUT_ADDRESS_INT_H

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets. */
#define ADDRESS_MAX_LEN 254

/* The domain part (after the last '@') of a checked address. */
const char *address_domain(const char *address);

/* 1 when the address has non-ASCII octets (it needs SMTPUTF8). */
int address_is_utf8(const char *address);

#endif
