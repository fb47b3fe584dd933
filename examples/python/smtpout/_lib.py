"""The C library, loaded with ctypes, with a prototype for every function.

Loading order (the first that applies):
  1. the path in the environment variable SMTPOUT_LIBRARY: an explicit
     choice, so failing to load it is an error, never a fallback;
  2. the library installed beside this package by `meson install`
     (-Dpython=true records its LIBDIR in _installed.py);
  3. the SONAME "libsmtpout.so.0", through the dynamic linker's own search:
     ldconfig's cache (an installed library, after `ldconfig`), the default
     directories, LD_LIBRARY_PATH.
Only ABI 0 is ever loaded: these prototypes are its prototypes, so a name
such as ctypes.util.find_library("smtpout") that may answer with another
SONAME is not asked.

Every exported function is declared in PROTOTYPES with its restype and
argtypes, so ctypes converts and checks each argument (no default-int
truncation of pointers or 64-bit values).  Nothing in this module keeps
state besides the loaded library.
"""
import ctypes
import importlib
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int,
                    c_int64, c_size_t, c_uint8, c_uint16, c_uint32, c_uint64,
                    c_void_p)

SONAME = "libsmtpout.so.0"


# Opaque C types: only pointers to them are ever used.  Distinct types make
# ctypes refuse a session where a config is expected.
class _Config(Structure):
    pass


class _Policy(Structure):
    pass


class _Callbacks(Structure):
    pass


class _Session(Structure):
    pass


class _Result(Structure):
    pass


class _TLSInfo(Structure):
    pass


class _MessageScan(Structure):
    pass


class _Delivery(Structure):
    pass


class _Attempt(Structure):
    pass


class _Route(Structure):
    pass


class _Request(Structure):
    pass


class _Hop(Structure):
    pass


class _StsPolicy(Structure):
    pass


class _TlsrptReport(Structure):
    pass


class _Certificate(Structure):
    pass


class _Dsn(Structure):
    pass


ConfigP = POINTER(_Config)
PolicyP = POINTER(_Policy)
CallbacksP = POINTER(_Callbacks)
SessionP = POINTER(_Session)
ResultP = POINTER(_Result)
TLSInfoP = POINTER(_TLSInfo)
MessageScanP = POINTER(_MessageScan)
DeliveryP = POINTER(_Delivery)
AttemptP = POINTER(_Attempt)
RouteP = POINTER(_Route)
RequestP = POINTER(_Request)
HopP = POINTER(_Hop)
StsPolicyP = POINTER(_StsPolicy)
TlsrptReportP = POINTER(_TlsrptReport)
CertificateP = POINTER(_Certificate)
DsnP = POINTER(_Dsn)

# Callback prototypes (include/smtpout/session.h).  The trace line is not
# NUL-terminated, hence POINTER(c_char) and an explicit length.
READ_BODY = CFUNCTYPE(c_int, SessionP, c_int, POINTER(c_uint8), c_size_t,
                      POINTER(c_size_t), POINTER(c_int), c_void_p)
ON_RESULT = CFUNCTYPE(None, SessionP, ResultP, c_void_p)
ON_MESSAGE_DONE = CFUNCTYPE(None, SessionP, c_int, c_void_p)
ON_TLS = CFUNCTYPE(None, SessionP, TLSInfoP, c_void_p)
ON_TRACE = CFUNCTYPE(None, SessionP, c_int, POINTER(c_char), c_size_t,
                     c_void_p)
# The delivery's store and TLS-RPT callbacks (include/smtpout/deliver.h).
STORE_GET = CFUNCTYPE(c_int, c_char_p, POINTER(c_uint8), c_size_t,
                      POINTER(c_size_t), c_void_p)
STORE_PUT = CFUNCTYPE(c_int, c_char_p, POINTER(c_uint8), c_size_t, c_uint64,
                      c_void_p)
TLSRPT_EVENT = CFUNCTYPE(c_int, POINTER(c_char), c_size_t, c_void_p)

_str = c_char_p
_int = c_int

# name: (restype, [argtypes]).  Kept in the order of the headers.
PROTOTYPES = {
    # common.h
    "smtpout_strerror": (_str, [c_int]),
    "smtpout_version": (_str, []),
    "smtpout_starttls_name": (_str, [c_int]),
    "smtpout_dane_name": (_str, [c_int]),
    "smtpout_mta_sts_name": (_str, [c_int]),
    # config.h
    "smtpout_config_new": (_int, [POINTER(ConfigP)]),
    "smtpout_config_load_file": (_int, [POINTER(ConfigP), c_char_p,
                                        c_char_p, c_size_t]),
    "smtpout_config_load_string": (_int, [POINTER(ConfigP), c_char_p,
                                          c_char_p, c_char_p, c_size_t]),
    "smtpout_config_ref": (ConfigP, [ConfigP]),
    "smtpout_config_unref": (None, [ConfigP]),
    "smtpout_config_timeout": (c_uint32, [ConfigP, c_int]),
    "smtpout_config_timeout_line": (c_uint32, [ConfigP, c_int]),
    "smtpout_config_helo_name": (_str, [ConfigP]),
    "smtpout_config_ca_file": (_str, [ConfigP]),
    "smtpout_config_relay": (_str, [ConfigP]),
    "smtpout_config_tls_priority": (_str, [ConfigP]),
    "smtpout_policy_resolve": (_int, [POINTER(PolicyP), ConfigP,
                                      POINTER(c_char_p), c_size_t,
                                      c_char_p]),
    "smtpout_policy_free": (None, [PolicyP]),
    "smtpout_policy_starttls": (_int, [PolicyP]),
    "smtpout_policy_allow_invalid_certs": (_int, [PolicyP]),
    "smtpout_policy_dane": (_int, [PolicyP]),
    "smtpout_policy_mta_sts": (_int, [PolicyP]),
    "smtpout_policy_source": (_str, [PolicyP, c_int]),
    "smtpout_policy_rule": (_str, [PolicyP, c_int]),
    "smtpout_policy_explain": (_str, [PolicyP]),
    # session.h: results and TLS information
    "smtpout_status_name": (_str, [c_int]),
    "smtpout_result_message_id": (_int, [ResultP]),
    "smtpout_result_recipient_index": (c_size_t, [ResultP]),
    "smtpout_result_recipient": (_str, [ResultP]),
    "smtpout_result_status": (_int, [ResultP]),
    "smtpout_result_code": (_int, [ResultP]),
    "smtpout_result_enhanced": (_str, [ResultP]),
    "smtpout_result_text": (_str, [ResultP]),
    "smtpout_result_possibly_delivered": (_int, [ResultP]),
    "smtpout_result_try_another_address": (_int, [ResultP]),
    "smtpout_result_dsn_notify": (c_uint32, [ResultP]),
    "smtpout_result_dsn_sent": (_int, [ResultP]),
    "smtpout_result_dsn_action": (_int, [ResultP]),
    "smtpout_dsn_action_name": (_str, [c_int]),
    "smtpout_tls_outcome_name": (_str, [c_int]),
    "smtpout_close_reason_name": (_str, [c_int]),
    "smtpout_tls_info_outcome": (_int, [TLSInfoP]),
    "smtpout_tls_info_used": (_int, [TLSInfoP]),
    "smtpout_tls_info_version": (_str, [TLSInfoP]),
    "smtpout_tls_info_cipher": (_str, [TLSInfoP]),
    "smtpout_tls_info_verified": (_int, [TLSInfoP]),
    "smtpout_tls_info_verify_error": (_str, [TLSInfoP]),
    "smtpout_tls_info_failure": (_str, [TLSInfoP]),
    "smtpout_tls_info_tlsrpt_result": (_str, [TLSInfoP]),
    "smtpout_tls_info_fallback_permitted": (_int, [TLSInfoP]),
    "smtpout_tls_info_plaintext_fallback": (_int, [TLSInfoP]),
    "smtpout_tls_info_resumed": (_int, [TLSInfoP]),
    "smtpout_tls_auth_name": (_str, [c_int]),
    "smtpout_tls_info_auth": (_int, [TLSInfoP]),
    "smtpout_tls_info_tlsa_matched": (_str, [TLSInfoP]),
    "smtpout_tls_info_tlsa_records": (c_size_t, [TLSInfoP]),
    "smtpout_tls_info_requirement": (_int, [TLSInfoP]),
    "smtpout_tls_info_requiretls": (_int, [TLSInfoP]),
    "smtpout_tls_info_implicit": (_int, [TLSInfoP]),
    "smtpout_tls_info_client_certificate": (_int, [TLSInfoP]),
    "smtpout_auth_outcome_name": (_str, [c_int]),
    # session.h: callbacks
    "smtpout_callbacks_new": (_int, [POINTER(CallbacksP)]),
    "smtpout_callbacks_free": (None, [CallbacksP]),
    "smtpout_callbacks_set_read_body": (None, [CallbacksP, READ_BODY]),
    "smtpout_callbacks_set_on_result": (None, [CallbacksP, ON_RESULT]),
    "smtpout_callbacks_set_on_message_done": (None, [CallbacksP,
                                                     ON_MESSAGE_DONE]),
    "smtpout_callbacks_set_on_tls": (None, [CallbacksP, ON_TLS]),
    "smtpout_callbacks_set_on_trace": (None, [CallbacksP, ON_TRACE]),
    # session.h: the session
    "smtpout_session_new": (_int, [POINTER(SessionP), c_char_p, ConfigP,
                                   CallbacksP, c_void_p]),
    "smtpout_session_new_for_hop": (_int, [POINTER(SessionP), HopP, ConfigP,
                                           CallbacksP, c_void_p]),
    "smtpout_session_hop_outcome": (_int, [SessionP]),
    "smtpout_session_free": (None, [SessionP]),
    "smtpout_session_set_helo_name": (_int, [SessionP, c_char_p]),
    "smtpout_session_set_tls_policy": (_int, [SessionP, c_int, c_int]),
    "smtpout_session_set_plaintext_fallback": (_int, [SessionP]),
    "smtpout_session_set_tls_resumption": (_int, [SessionP, c_int]),
    "smtpout_session_set_ca_file": (_int, [SessionP, c_char_p]),
    "smtpout_session_set_timeout": (_int, [SessionP, c_int, c_uint32]),
    "smtpout_session_set_auth": (_int, [SessionP, c_char_p, c_char_p,
                                        c_char_p, c_uint32]),
    "smtpout_session_set_implicit_tls": (_int, [SessionP, c_int]),
    "smtpout_session_set_client_cert": (_int, [SessionP, c_char_p,
                                               c_char_p]),
    "smtpout_session_set_chunking": (_int, [SessionP, c_int]),
    "smtpout_session_start": (_int, [SessionP, c_uint64]),
    "smtpout_session_submit": (_int, [SessionP, c_char_p, POINTER(c_char_p),
                                      c_size_t, c_uint64, c_uint32]),
    "smtpout_dsn_new": (_int, [POINTER(DsnP)]),
    "smtpout_dsn_free": (None, [DsnP]),
    "smtpout_dsn_set_ret": (_int, [DsnP, c_int]),
    "smtpout_dsn_set_envid": (_int, [DsnP, c_char_p]),
    "smtpout_dsn_set_notify": (_int, [DsnP, c_size_t, c_uint32]),
    "smtpout_dsn_set_orcpt": (_int, [DsnP, c_size_t, c_char_p]),
    "smtpout_session_submit_dsn": (_int, [SessionP, c_char_p,
                                          POINTER(c_char_p), c_size_t,
                                          c_uint64, c_uint32, DsnP]),
    "smtpout_session_quit": (_int, [SessionP]),
    "smtpout_session_abort": (_int, [SessionP, c_uint64]),
    "smtpout_session_resume_body": (_int, [SessionP]),
    "smtpout_session_feed": (_int, [SessionP, POINTER(c_uint8), c_size_t,
                                    c_uint64]),
    "smtpout_session_feed_eof": (_int, [SessionP, c_uint64]),
    "smtpout_session_peek_output": (_int, [SessionP,
                                           POINTER(POINTER(c_uint8)),
                                           POINTER(c_size_t), c_uint64]),
    "smtpout_session_consume_output": (_int, [SessionP, c_size_t, c_uint64]),
    "smtpout_session_want_read": (_int, [SessionP]),
    "smtpout_session_want_write": (_int, [SessionP]),
    "smtpout_session_expiry": (c_uint64, [SessionP]),
    "smtpout_session_handle_expiry": (_int, [SessionP, c_uint64]),
    "smtpout_session_is_done": (_int, [SessionP]),
    "smtpout_session_close_reason": (_int, [SessionP]),
    "smtpout_session_close_text": (_str, [SessionP]),
    "smtpout_session_tls_info": (TLSInfoP, [SessionP]),
    "smtpout_session_peer_certificate_count": (c_size_t, [SessionP]),
    "smtpout_session_peer_certificate": (_int, [SessionP, c_size_t,
                                                POINTER(CertificateP)]),
    "smtpout_certificate_free": (None, [CertificateP]),
    "smtpout_certificate_subject": (_str, [CertificateP]),
    "smtpout_certificate_issuer": (_str, [CertificateP]),
    "smtpout_certificate_not_after": (c_int64, [CertificateP]),
    "smtpout_certificate_sha256": (_str, [CertificateP]),
    "smtpout_session_capabilities": (c_uint32, [SessionP]),
    "smtpout_session_policy_starttls": (_int, [SessionP]),
    "smtpout_session_policy_allow_invalid_certs": (_int, [SessionP]),
    "smtpout_session_auth_outcome": (_int, [SessionP]),
    "smtpout_session_auth_mechanism": (_str, [SessionP]),
    "smtpout_address_check": (_int, [c_char_p]),
    # message.h
    "smtpout_message_scan_new": (_int, [POINTER(MessageScanP)]),
    "smtpout_message_scan_free": (None, [MessageScanP]),
    "smtpout_message_scan_update": (_int, [MessageScanP, POINTER(c_uint8),
                                           c_size_t]),
    "smtpout_message_scan_end": (_int, [MessageScanP, POINTER(c_uint64),
                                        POINTER(c_uint32)]),
    "smtpout_message_inspect": (_int, [POINTER(c_uint8), c_size_t,
                                       POINTER(c_uint64), POINTER(c_uint32)]),
    # deliver.h
    "smtpout_delivery_new": (_int, [POINTER(DeliveryP), ConfigP]),
    "smtpout_delivery_free": (None, [DeliveryP]),
    "smtpout_delivery_set_server": (_int, [DeliveryP, c_char_p, c_uint16]),
    "smtpout_delivery_set_domain": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_relay": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_route_flags": (_int, [DeliveryP, c_uint32]),
    "smtpout_delivery_set_resolver": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_dnssec_mode": (_int, [DeliveryP, c_int]),
    "smtpout_delivery_set_store": (_int, [DeliveryP, STORE_GET, STORE_PUT,
                                          c_void_p]),
    "smtpout_delivery_set_tlsrpt_events": (_int, [DeliveryP, TLSRPT_EVENT,
                                                  c_void_p]),
    "smtpout_delivery_set_mx_name": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_helo_name": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_ca_file": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_tls_policy": (_int, [DeliveryP, c_int, c_int]),
    "smtpout_delivery_set_timeout": (_int, [DeliveryP, c_int, c_uint32]),
    "smtpout_delivery_set_sender": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_add_recipient": (_int, [DeliveryP, c_char_p]),
    "smtpout_delivery_set_body": (_int, [DeliveryP, POINTER(c_uint8),
                                         c_size_t]),
    "smtpout_delivery_set_body_fd": (_int, [DeliveryP, c_int]),
    "smtpout_delivery_set_flags": (_int, [DeliveryP, c_uint32]),
    "smtpout_delivery_set_trace": (_int, [DeliveryP, ON_TRACE, c_void_p]),
    "smtpout_delivery_set_auth": (_int, [DeliveryP, c_char_p, c_char_p,
                                         c_char_p, c_uint32]),
    "smtpout_delivery_set_implicit_tls": (_int, [DeliveryP, c_int]),
    "smtpout_delivery_set_client_cert": (_int, [DeliveryP, c_char_p,
                                                c_char_p]),
    "smtpout_delivery_set_chunking": (_int, [DeliveryP, c_int]),
    "smtpout_delivery_set_dsn": (_int, [DeliveryP, DsnP]),
    "smtpout_delivery_run": (_int, [DeliveryP]),
    "smtpout_delivery_resolve": (_int, [DeliveryP]),
    "smtpout_delivery_route": (RouteP, [DeliveryP]),
    "smtpout_delivery_tlsrpt_events_lost": (c_uint32, [DeliveryP]),
    "smtpout_delivery_recipient_count": (c_size_t, [DeliveryP]),
    "smtpout_delivery_result": (ResultP, [DeliveryP, c_size_t]),
    "smtpout_delivery_attempt_count": (c_size_t, [DeliveryP]),
    "smtpout_delivery_attempt": (AttemptP, [DeliveryP, c_size_t]),
    "smtpout_delivery_policy": (PolicyP, [DeliveryP]),
    "smtpout_attempt_address": (_str, [AttemptP]),
    "smtpout_attempt_plaintext_fallback": (_int, [AttemptP]),
    "smtpout_attempt_tls_info": (TLSInfoP, [AttemptP]),
    "smtpout_attempt_error": (_str, [AttemptP]),
    "smtpout_attempt_mx": (_str, [AttemptP]),
    "smtpout_attempt_hop_outcome": (_int, [AttemptP]),
    "smtpout_attempt_tls_requirement": (_int, [AttemptP]),
    "smtpout_attempt_tls_source": (_int, [AttemptP]),
    "smtpout_attempt_dane_status": (_int, [AttemptP]),
    "smtpout_attempt_tlsa_count": (c_size_t, [AttemptP]),
    "smtpout_attempt_sts_mode": (_int, [AttemptP]),
    "smtpout_attempt_explain": (_str, [AttemptP]),
    "smtpout_attempt_tlsrpt_event": (_str, [AttemptP]),
    "smtpout_attempt_tlsrpt_result": (_str, [AttemptP]),
    "smtpout_attempt_auth_outcome": (_int, [AttemptP]),
    "smtpout_attempt_auth_mechanism": (_str, [AttemptP]),
    # route.h
    "smtpout_dnssec_name": (_str, [c_int]),
    "smtpout_route_new": (_int, [POINTER(RouteP), ConfigP, c_char_p,
                                 c_uint32, c_uint64, c_uint64]),
    "smtpout_route_new_relay": (_int, [POINTER(RouteP), ConfigP, c_char_p,
                                       c_uint32, c_uint64, c_uint64]),
    "smtpout_route_free": (None, [RouteP]),
    "smtpout_route_set_seed": (_int, [RouteP, c_uint64]),
    "smtpout_route_want": (_int, [RouteP]),
    "smtpout_route_next_request": (_int, [RouteP, POINTER(RequestP),
                                          c_uint64]),
    "smtpout_request_id": (_int, [RequestP]),
    "smtpout_request_kind": (_int, [RequestP]),
    "smtpout_request_qname": (_str, [RequestP]),
    "smtpout_request_qtype": (_int, [RequestP]),
    "smtpout_request_timeout_ms": (c_uint32, [RequestP]),
    "smtpout_request_url": (_str, [RequestP]),
    "smtpout_request_host": (_str, [RequestP]),
    "smtpout_request_port": (c_uint16, [RequestP]),
    "smtpout_request_address_count": (c_size_t, [RequestP]),
    "smtpout_request_address": (_str, [RequestP, c_size_t]),
    "smtpout_request_max_bytes": (c_uint32, [RequestP]),
    "smtpout_request_cache_key": (_str, [RequestP]),
    "smtpout_request_cache_value": (POINTER(c_uint8),
                                    [RequestP, POINTER(c_size_t)]),
    "smtpout_request_cache_expires": (c_uint64, [RequestP]),
    "smtpout_route_https_answer": (_int, [RouteP, c_int, c_int, c_int,
                                          c_char_p, c_char_p, c_size_t,
                                          c_uint64]),
    "smtpout_route_cache_answer": (_int, [RouteP, c_int, c_char_p, c_size_t,
                                          c_uint64]),
    "smtpout_route_dns_answer": (_int, [RouteP, c_int, c_int, c_char_p,
                                        c_size_t, c_uint64]),
    "smtpout_route_dns_failed": (_int, [RouteP, c_int, c_int, c_int,
                                        c_uint64]),
    "smtpout_route_expiry": (c_uint64, [RouteP]),
    "smtpout_route_handle_expiry": (_int, [RouteP, c_uint64]),
    "smtpout_tls_requirement_name": (_str, [c_int]),
    "smtpout_dane_status_name": (_str, [c_int]),
    "smtpout_tls_source_name": (_str, [c_int]),
    "smtpout_route_next_hop": (_int, [RouteP, POINTER(HopP), c_uint64]),
    "smtpout_hop_mx": (_str, [HopP]),
    "smtpout_hop_preference": (_int, [HopP]),
    "smtpout_hop_address": (_str, [HopP]),
    "smtpout_hop_port": (c_uint16, [HopP]),
    "smtpout_hop_tls_requirement": (_int, [HopP]),
    "smtpout_hop_dane_status": (_int, [HopP]),
    "smtpout_hop_tls_source": (_int, [HopP]),
    "smtpout_hop_starttls": (_int, [HopP]),
    "smtpout_hop_allow_invalid_certs": (_int, [HopP]),
    "smtpout_hop_plaintext_fallback": (_int, [HopP]),
    "smtpout_hop_requiretls": (_int, [HopP]),
    "smtpout_hop_sts_mode": (_int, [HopP]),
    "smtpout_hop_sts_mx_match": (_int, [HopP]),
    "smtpout_hop_relay": (_str, [HopP]),
    "smtpout_hop_implicit_tls": (_int, [HopP]),
    "smtpout_hop_auth_mechanisms": (_str, [HopP]),
    "smtpout_hop_auth_username": (_str, [HopP]),
    "smtpout_hop_auth_tls_any": (_int, [HopP]),
    "smtpout_hop_auth_secret": (_int, [HopP, c_char_p, c_size_t]),
    "smtpout_hop_client_cert": (_str, [HopP]),
    "smtpout_hop_client_key": (_str, [HopP]),
    "smtpout_hop_tlsa_base": (_str, [HopP]),
    "smtpout_hop_tlsa_count": (c_size_t, [HopP]),
    "smtpout_hop_tlsa": (_int, [HopP, c_size_t, POINTER(c_int),
                                POINTER(c_int), POINTER(c_int),
                                POINTER(POINTER(c_uint8)),
                                POINTER(c_size_t)]),
    "smtpout_hop_dane_name_count": (c_size_t, [HopP]),
    "smtpout_hop_dane_name": (_str, [HopP, c_size_t]),
    "smtpout_hop_explain": (_str, [HopP]),
    "smtpout_hop_outcome_name": (_str, [c_int]),
    "smtpout_route_hop_done": (_int, [RouteP, HopP, c_int, c_char_p,
                                      c_uint64]),
    "smtpout_route_hop_tlsrpt": (_int, [RouteP, HopP, c_char_p, c_char_p,
                                        c_char_p, c_char_p, c_uint64]),
    "smtpout_route_next_event": (_int, [RouteP, POINTER(c_char_p),
                                        POINTER(c_size_t)]),
    "smtpout_route_events_dropped": (c_uint32, [RouteP]),
    "smtpout_route_status": (_int, [RouteP]),
    "smtpout_route_enhanced": (_str, [RouteP]),
    "smtpout_route_text": (_str, [RouteP]),
    "smtpout_route_domain": (_str, [RouteP]),
    "smtpout_route_dnssec": (_int, [RouteP]),
    "smtpout_route_implicit_mx": (_int, [RouteP]),
    "smtpout_route_mx_count": (c_size_t, [RouteP]),
    "smtpout_route_mx_name": (_str, [RouteP, c_size_t]),
    "smtpout_route_mx_preference": (_int, [RouteP, c_size_t]),
    "smtpout_route_sts_mode": (_int, [RouteP]),
    "smtpout_route_sts_id": (_str, [RouteP]),
    "smtpout_route_sts_explain": (_str, [RouteP]),
    # sts.h
    "smtpout_sts_policy_parse": (_int, [POINTER(StsPolicyP), c_char_p,
                                        c_size_t, c_char_p, c_size_t]),
    "smtpout_sts_policy_free": (None, [StsPolicyP]),
    "smtpout_sts_policy_mode": (_int, [StsPolicyP]),
    "smtpout_sts_mode_name": (_str, [c_int]),
    "smtpout_sts_policy_max_age": (c_uint32, [StsPolicyP]),
    "smtpout_sts_policy_mx_count": (c_size_t, [StsPolicyP]),
    "smtpout_sts_policy_mx": (_str, [StsPolicyP, c_size_t]),
    "smtpout_sts_policy_mx_allowed": (_int, [StsPolicyP, c_char_p]),
    # tlsrpt.h
    "smtpout_tlsrpt_report_new": (_int, [POINTER(TlsrptReportP), c_char_p,
                                         c_uint64]),
    "smtpout_tlsrpt_report_free": (None, [TlsrptReportP]),
    "smtpout_tlsrpt_report_add_event_json": (_int, [TlsrptReportP, c_char_p,
                                                    c_size_t]),
    "smtpout_tlsrpt_report_feed": (_int, [TlsrptReportP, c_char_p,
                                          c_size_t]),
    "smtpout_tlsrpt_report_feed_eof": (_int, [TlsrptReportP]),
    "smtpout_tlsrpt_report_counter": (c_uint64, [TlsrptReportP, c_int]),
    "smtpout_tlsrpt_report_domain_count": (c_size_t, [TlsrptReportP]),
    "smtpout_tlsrpt_report_domain": (_str, [TlsrptReportP, c_size_t]),
    "smtpout_tlsrpt_report_render": (_int, [TlsrptReportP, c_size_t,
                                            c_char_p, c_char_p, c_char_p,
                                            POINTER(c_char_p),
                                            POINTER(c_size_t)]),
}


def _installed_libdir():
    try:
        # Written by meson install only: absent from a source tree or a
        # pip install.
        installed = importlib.import_module(__package__ + "._installed")
    except ImportError:
        return None
    return getattr(installed, "LIBDIR", None)


def _load():
    override = os.environ.get("SMTPOUT_LIBRARY")
    if override:
        return ctypes.CDLL(override)
    candidates = []
    libdir = _installed_libdir()
    if libdir:
        candidates.append(os.path.join(libdir, SONAME))
    candidates.append(SONAME)
    errors = []
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            errors.append(str(e))
    raise ImportError(
        "cannot load the smtpout C library: %s.  Install it (meson install "
        "-C build, then ldconfig) or set SMTPOUT_LIBRARY to the path of "
        "libsmtpout.so.0" % "; ".join(errors))


def _declare(cdll):
    missing = []
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError("%s lacks %s: an older smtpout?" % (
            getattr(cdll, "_name", "libsmtpout"), ", ".join(missing)))
    return cdll


lib = _declare(_load())
