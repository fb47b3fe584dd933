/*
 * smtpout — embeddable, policy-driven outbound SMTP delivery.
 *
 * The umbrella header: include this one.
 *
 *   <smtpout/common.h>   error codes, version, shared enumerations
 *   <smtpout/config.h>   the INI configuration and the policy engine
 *   <smtpout/session.h>  the sans-I/O session, callbacks, results
 *   <smtpout/message.h>  the scan of a body: its size and flags for submit
 *   <smtpout/deliver.h>  the blocking one-call delivery driver
 *   <smtpout/sts.h>      MTA-STS policies (RFC 8461): parser, MX check
 *   <smtpout/tlsrpt.h>   TLS-RPT aggregate reports (RFC 8460)
 *   <smtpout/route.h>    routes: MX hosts, addresses and DANE for a domain
 *
 * The API reference is docs/api.md; every function is also documented where
 * it is declared.
 */
#ifndef SMTPOUT_SMTPOUT_H
#define SMTPOUT_SMTPOUT_H

#include <smtpout/common.h>
#include <smtpout/config.h>
#include <smtpout/session.h>
#include <smtpout/message.h>
#include <smtpout/deliver.h>
#include <smtpout/sts.h>
#include <smtpout/tlsrpt.h>
#include <smtpout/route.h>

#endif /* SMTPOUT_SMTPOUT_H */
