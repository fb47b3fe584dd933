"""Configuration (the INI file of docs/configuration.md) and resolved
policies."""
from __future__ import annotations

import ctypes
import dataclasses
import weakref
from typing import Any, Dict, Iterable, Optional, Union

from ._lib import ConfigP, PolicyP, lib
from ._strings import StrOrBytes, StrPath, encode, encode_opt
from ._types import Knob, StartTLS, Timeout, text
from .errors import ConfigError, Error, check, describe

_ERRBUF = 8192


@dataclasses.dataclass(frozen=True)
class Policy:
    """The resolved TLS policy of one destination, and where each knob came
    from ("FILE:LINE" or "default") and which rule decided it."""
    starttls: StartTLS
    allow_invalid_certs: bool
    source: Dict[str, str]
    rule: Dict[str, str]
    explain: str

    @classmethod
    def _from_c(cls, p: Any) -> "Policy":
        keys = {"starttls": Knob.STARTTLS,
                "allow_invalid_certs": Knob.ALLOW_INVALID_CERTS}
        return cls(starttls=StartTLS(lib.smtpout_policy_starttls(p)),
                   allow_invalid_certs=bool(
                       lib.smtpout_policy_allow_invalid_certs(p)),
                   source={k: text(lib.smtpout_policy_source(p, v)) or ""
                           for k, v in keys.items()},
                   rule={k: text(lib.smtpout_policy_rule(p, v)) or ""
                         for k, v in keys.items()},
                   explain=text(lib.smtpout_policy_explain(p)) or "")


class Config:
    """An immutable, reference-counted configuration.

        Config()                         built-in defaults
        Config.load_file("policy.ini")   raises ConfigError("FILE:LINE: ...")
        Config.load_string(text, name="inline.ini")

    Share one Config between any number of sessions and deliveries (and
    threads): the library keeps its own reference for each of them, so
    closing the Config early is safe.  close() (or the end of a with
    block, or garbage collection) drops this object's reference.
    """

    def __init__(self, _ptr: Optional[Any] = None):
        if _ptr is None:
            _ptr = ConfigP()
            check(lib.smtpout_config_new(ctypes.byref(_ptr)))
        self._ptr = _ptr
        self._finalizer = weakref.finalize(self, lib.smtpout_config_unref,
                                           _ptr)

    @classmethod
    def load_file(cls, path: StrPath) -> "Config":
        ptr = ConfigP()
        err = ctypes.create_string_buffer(_ERRBUF)
        rv = lib.smtpout_config_load_file(ctypes.byref(ptr),
                                          encode(path, "config file", "path"),
                                          err, _ERRBUF)
        if rv in (Error.CONFIG, Error.IO):
            raise ConfigError(rv, text(err.value) or "")
        check(rv)
        return cls(ptr)

    @classmethod
    def load_string(cls, ini_text: StrOrBytes,
                    name: Optional[StrOrBytes] = None) -> "Config":
        """The configuration in `ini_text`; `name` stands for the file
        name in error messages and policy sources."""
        ptr = ConfigP()
        err = ctypes.create_string_buffer(_ERRBUF)
        rv = lib.smtpout_config_load_string(
            ctypes.byref(ptr), encode(ini_text, "configuration text"),
            encode_opt(name, "name"), err, _ERRBUF)
        if rv in (Error.CONFIG, Error.IO):
            raise ConfigError(rv, text(err.value) or "")
        check(rv)
        return cls(ptr)

    @property
    def _as_parameter_(self) -> Any:
        # Lets a Config be passed where the C API takes smtpout_config *.
        if self._ptr is None:
            raise ValueError("the configuration is closed")
        return self._ptr

    def close(self) -> None:
        """Drops this object's reference (idempotent)."""
        self._finalizer()
        self._ptr = None

    def __enter__(self) -> "Config":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def timeout(self, which: Union[Timeout, int, str]) -> int:
        """The timeout of phase `which` (a Timeout, or its name such as
        "data") in milliseconds."""
        return lib.smtpout_config_timeout(
            self, int(Timeout.parse(which, "timeout")))

    @property
    def helo_name(self) -> Optional[str]:
        return text(lib.smtpout_config_helo_name(self))

    @property
    def ca_file(self) -> Optional[str]:
        return text(lib.smtpout_config_ca_file(self))

    @property
    def tls_priority(self) -> str:
        return text(lib.smtpout_config_tls_priority(self)) or ""

    def policy(self, domains: Union[StrOrBytes, Iterable[StrOrBytes]] = (),
               mx: Optional[StrOrBytes] = None) -> Policy:
        """Resolves the policy of recipient `domains` (a name or a list)
        reached through MX host `mx`."""
        if isinstance(domains, (str, bytes)):
            domains = [domains]
        domains = list(domains)
        enc = [encode(d, "domain", "name") for d in domains]
        mx_enc = encode_opt(mx, "mx", "name")
        arr = (ctypes.c_char_p * max(len(enc), 1))(*enc)
        p = PolicyP()
        rv = lib.smtpout_policy_resolve(ctypes.byref(p), self, arr, len(enc),
                                        mx_enc)
        if rv == Error.BAD_NAME:
            # Say which name: the MX, or the first domain that is none.
            bad = [("mx", mx)] if mx is not None else []
            bad += [("domain", d) for d in domains]
            for argument, value in bad:
                if not _valid_name(self, argument, value):
                    check(rv, describe(argument, value),
                          argument=argument, value=value)
        check(rv)
        try:
            return Policy._from_c(p)
        finally:
            lib.smtpout_policy_free(p)


def _valid_name(config: Config, argument: str, value: StrOrBytes) -> bool:
    """Whether the library takes `value` as a domain (argument "domain")
    or an MX name (argument "mx")."""
    p = PolicyP()
    one = (ctypes.c_char_p * 1)(encode(value, argument, "name"))
    if argument == "mx":
        rv = lib.smtpout_policy_resolve(ctypes.byref(p), config, one, 0,
                                        encode(value, argument, "name"))
    else:
        rv = lib.smtpout_policy_resolve(ctypes.byref(p), config, one, 1,
                                        None)
    if rv == 0:
        lib.smtpout_policy_free(p)
    return rv != Error.BAD_NAME
