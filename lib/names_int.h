/*
 * names_int.h — normalisation of host names, domains and IP literals.
 *
 * Every name the library compares or sends (MX host, recipient domain,
 * EHLO name, SNI, policy patterns) goes through name_normalize(), so that
 * "BÜCHER.example.", "bücher.example" and "xn--bcher-kva.example" are one
 * name: lower-case A-labels, no trailing dot (IDNA2008, non-transitional,
 * with UTS#46 mapping, via libidn2).
 */
#ifndef SMTPOUT_NAMES_INT_H
#define SMTPOUT_NAMES_INT_H

#include <stddef.h>

/* The longest normalised name plus its NUL (RFC 1035: 253 octets). */
#define NAME_MAX_LEN 254

/*
 * Normalises the domain name `in` into `out` (`outlen` bytes, at least
 * NAME_MAX_LEN).  Returns 0, SMTPOUT_ERR_BAD_NAME (empty, invalid label,
 * too long, not convertible, numeric: an all-digit last label or anything
 * inet_aton() reads as an address) or SMTPOUT_ERR_NOMEM.
 */
int name_normalize(const char *in, char *out, size_t outlen);

/*
 * name_normalize() that also says why a name was refused: on
 * SMTPOUT_ERR_BAD_NAME, *why (when `why` is not NULL) points to a static
 * English phrase ("empty label", libidn2's description, ...).
 */
int name_normalize_why(const char *in, char *out, size_t outlen,
                       const char **why);

/*
 * The same normalisation, always through libidn2 (no plain-ASCII fast
 * path).  Exists so that tests can check that both paths agree.
 */
int name_normalize_idn(const char *in, char *out, size_t outlen,
                       const char **why);

/*
 * If `in` is an IP address literal ("192.0.2.1", "2001:db8::1", either
 * with one trailing root dot, or either in square brackets, optionally
 * with an "IPv6:" tag as in RFC 5321), writes its canonical text without
 * brackets to `out` and returns 1; returns 0 for anything else ("[...]."
 * included).  IPv4 is dotted-quad decimal only: the shorter, octal and
 * hex spellings inet_aton() accepts are neither IP literals nor names
 * (name_normalize() refuses them).
 */
int name_ip_literal(const char *in, char *out, size_t outlen);

#endif
