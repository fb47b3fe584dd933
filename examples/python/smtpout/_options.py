"""The options send(), aio.send() and connect() share, checked once, with
errors that name the bad value before any connection is made."""
from __future__ import annotations

import os
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

from ._strings import StrOrBytes, encode, encode_opt
from ._types import StartTLS, Timeout, Trace
from .config import Config
from .errors import Error, check, describe, error_for

Server = Union[str, Tuple[str, int]]
TraceFn = Callable[[Trace, bytes], None]
ConfigArg = Union[Config, str, bytes, "os.PathLike[str]", None]

_MAX_MS = 2**32 - 1


def _invalid(argument: str, value: Any, why: str) -> Exception:
    return error_for(Error.INVALID_ARGUMENT, describe(argument, value, why),
                     argument=argument, value=value)


def split_server(server: Server) -> Tuple[str, int]:
    """("host", port) from "host", "host:port", "[v6]:port", "v6" or a
    (host, port) tuple; port 25 by default."""
    host: Any
    port: Any = 25
    if isinstance(server, tuple):
        if len(server) != 2:
            raise _invalid("server", server, "not a (host, port) pair")
        host, port = server
    elif isinstance(server, str):
        if server.startswith("["):
            host, sep, rest = server[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise _invalid("server", server, "not [address]:port")
            if rest:
                port = rest[1:]
        else:
            host, sep, tail = server.rpartition(":")
            if not sep or ":" in host:   # no port, or a bare IPv6 address
                host = server
            else:
                port = tail
    else:
        raise TypeError("server must be a str or a (host, port) tuple, not "
                        + type(server).__name__)
    if not isinstance(host, str) or not host:
        raise _invalid("server", server, "no host")
    encode(host, "server", "name")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise _invalid("server", server, "the port is not a number") \
            from None
    if not 0 < port < 65536:
        raise _invalid("server", server, "the port is not in 1..65535")
    return host, port


def timeout_ms(seconds: float, argument: str = "timeout") -> int:
    try:
        ms = max(1, round(float(seconds) * 1000))
    except (TypeError, ValueError):
        raise _invalid(argument, seconds, "not a number of seconds") \
            from None
    if not seconds > 0 or ms > _MAX_MS:
        raise _invalid(argument, seconds,
                       "not between 0.001 and %d seconds" % (_MAX_MS // 1000))
    return ms


def recipient_list(recipients: Any) -> List[StrOrBytes]:
    if isinstance(recipients, (str, bytes)):
        recipients = [recipients]
    out = list(recipients)
    for r in out:
        encode(r, "recipient", "address")
    if not out:
        raise _invalid("recipients", recipients, "no recipient")
    return out


def auth_tuple(user: Any, password: Any, mechanisms: Any = None,
               tls_any: bool = False) -> Optional[Tuple[Any, ...]]:
    """send()'s auth_* arguments as Session's `auth`, checked: both or
    neither of user and password; mechanisms and tls_any need them."""
    if user is None and password is None:
        if mechanisms is not None or tls_any:
            raise _invalid("auth_mech" if mechanisms is not None
                           else "auth_tls_any", mechanisms or tls_any,
                           "needs auth_user and auth_password")
        return None
    if user is None or password is None:
        raise _invalid("auth_user" if user is None else "auth_password",
                       None, "auth_user and auth_password go together")
    encode(user, "auth_user")
    return (user, password, mechanisms, bool(tls_any))


def client_pair(cert: Any, key: Any) -> Optional[Tuple[Any, Any]]:
    """send()'s client_cert and client_key as Session's client_cert."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise _invalid("client_cert" if cert is None else "client_key",
                       None, "client_cert and client_key go together")
    return (cert, key)


def set_auth(setter: Callable[..., int], ptr: Any,
             auth: Sequence[Any]) -> None:
    """smtpout_session_set_auth() or smtpout_delivery_set_auth() with
    (user, password[, mechanisms[, tls_any]]).  The password is handed
    over and not kept here (the library copies it)."""
    user, password, *rest = auth
    mechanisms = rest[0] if rest else None
    tls_any = bool(rest[1]) if len(rest) > 1 else False
    rv = setter(ptr, encode_opt(mechanisms, "auth_mech"),
                encode(user, "auth_user"), encode(password, "auth_password"),
                1 if tls_any else 0)
    # The password is never part of an error's text.
    check(rv, describe("auth_mech", mechanisms, "an unknown mechanism, or a "
                       "user over 255 bytes or a password over 8192") if
          mechanisms is not None else
          "auth_user or auth_password empty or too long",
          argument="auth_mech" if mechanisms is not None else "auth_user",
          value=mechanisms if mechanisms is not None else user)


class Options:
    """What send() and connect() were told, checked."""

    def __init__(self, server: Optional[Server], mx_name: Optional[str],
                 config: ConfigArg = None, ca_file: Any = None,
                 helo: Optional[str] = None, starttls: Any = None,
                 allow_invalid_certs: Optional[bool] = None,
                 trace: Optional[TraceFn] = None,
                 timeout: Optional[float] = None,
                 auth: Optional[Tuple[Any, ...]] = None,
                 implicit_tls: bool = False,
                 client_cert: Optional[Tuple[Any, Any]] = None,
                 chunking: bool = True):
        # None: a delivery through a configured relay (send(relay=...)).
        self.host, self.port = (split_server(server) if server is not None
                                else ("", 0))
        # Smarthost options (docs/relay.md), as Session takes them.
        self.auth = auth
        self.implicit_tls = bool(implicit_tls)
        if client_cert is not None:
            if not (isinstance(client_cert, tuple) and len(client_cert) == 2):
                raise _invalid("client_cert", client_cert,
                               "not a (certificate file, key file) pair")
            for f in client_cert:
                encode(f, "client_cert", "path")
        self.client_cert = client_cert
        self.chunking = bool(chunking)
        if auth is not None and starttls is not None and \
                StartTLS.parse(starttls, "starttls") == StartTLS.DISABLE:
            raise _invalid("starttls", starttls, "credentials are never "
                           "sent in clear")
        self.mx = mx_name or self.host
        if self.mx:
            encode(self.mx, "mx_name", "name")
        if helo is not None:
            encode(helo, "helo", "name")
        if ca_file is not None:
            encode(ca_file, "ca_file", "path")
        self.helo, self.ca_file, self.trace = helo, ca_file, trace
        self.starttls: Optional[StartTLS] = None
        self.allow_invalid_certs = False
        if starttls is not None:
            self.starttls = StartTLS.parse(starttls, "starttls")
            self.allow_invalid_certs = bool(allow_invalid_certs)
        elif allow_invalid_certs is not None:
            raise _invalid("allow_invalid_certs", allow_invalid_certs,
                           "needs starttls (or set it in the configuration)")
        self.timeouts: Dict[Timeout, int] = {}
        if timeout is not None:
            ms = timeout_ms(timeout)
            self.timeouts = {which: ms for which in Timeout}
        self._own_config = None
        if config is None or isinstance(config, Config):
            self.config = config
        elif isinstance(config, (str, bytes, os.PathLike)):
            self.config = self._own_config = Config.load_file(config)
        else:
            raise TypeError("config must be a Config, the path of a "
                            "configuration file or None, not "
                            + type(config).__name__)

    def shared_config(self) -> Config:
        """The configuration, made once when none was given: sessions of
        one delivery share it (and its TLS caches)."""
        if self.config is None:
            self.config = self._own_config = Config()
        return self.config

    def connect_timeout_s(self) -> float:
        ms = self.timeouts.get(Timeout.CONNECT) or \
            self.shared_config().timeout(Timeout.CONNECT)
        return ms / 1000.0

    def session_args(self) -> Dict[str, Any]:
        """Keyword arguments of Session() for one connection."""
        return dict(config=self.shared_config(), helo=self.helo,
                    ca_file=self.ca_file, starttls=self.starttls,
                    allow_invalid_certs=self.allow_invalid_certs,
                    timeouts=self.timeouts, auth=self.auth,
                    implicit_tls=self.implicit_tls,
                    client_cert=self.client_cert, chunking=self.chunking)

    def check_names(self) -> None:
        """BadName for an MX or HELO name the library refuses, and the
        error of AUTH arguments or a client certificate it refuses, before
        any connection is made (a session checks them as it is made)."""
        from .session import Session
        Session(self.mx, self.shared_config(), helo=self.helo, auth=self.auth,
                client_cert=self.client_cert).close()

    def close(self) -> None:
        if self._own_config is not None:
            self._own_config.close()
            self._own_config = None
