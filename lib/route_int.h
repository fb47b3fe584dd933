/*
 * route_int.h — what the rest of the library reads from a route's hop.
 *
 * The route itself (lib/route.c) is public (<smtpout/route.h>); its
 * structures are private to route.c.  The session will enforce a hop's TLS
 * requirement (a later step wires it): it needs the TLSA records and the
 * DANE-TA reference identifiers in the form lib/dane.c takes them, which
 * this accessor gives without copying.
 */
#ifndef SMTPOUT_ROUTE_INT_H
#define SMTPOUT_ROUTE_INT_H

#include <stddef.h>

#include "dane_int.h"
#include "smtpout/route.h"

/*
 * The DANE material of a hop: its TLSA records (*records, *nrecords; the
 * data points into memory the route owns) and the reference identifiers
 * for DANE-TA (*names, *nnames), ready for dane_verify().  All zero when
 * the hop carries no TLSA record.  Valid while the hop is.
 */
void route_hop_dane(const smtpout_hop *hop, const struct dns_tlsa **records,
                    size_t *nrecords, const char *const **names,
                    size_t *nnames);

#endif
