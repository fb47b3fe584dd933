"""Configuration (the INI file of docs/configuration.md) and resolved
policies."""
import ctypes
import dataclasses
import os
import weakref
from typing import Dict, Optional

from ._lib import ConfigP, PolicyP, lib
from ._types import Knob, StartTLS, Timeout, text
from .errors import ConfigError, Error, check

_ERRBUF = 8192


def _encode(s):
    return s if isinstance(s, bytes) else os.fsencode(s) \
        if isinstance(s, os.PathLike) else s.encode("utf-8")


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
    def _from_c(cls, p):
        keys = {"starttls": Knob.STARTTLS,
                "allow_invalid_certs": Knob.ALLOW_INVALID_CERTS}
        return cls(starttls=StartTLS(lib.smtpout_policy_starttls(p)),
                   allow_invalid_certs=bool(
                       lib.smtpout_policy_allow_invalid_certs(p)),
                   source={k: text(lib.smtpout_policy_source(p, v))
                           for k, v in keys.items()},
                   rule={k: text(lib.smtpout_policy_rule(p, v))
                         for k, v in keys.items()},
                   explain=text(lib.smtpout_policy_explain(p)))


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

    def __init__(self, _ptr=None):
        if _ptr is None:
            _ptr = ConfigP()
            check(lib.smtpout_config_new(ctypes.byref(_ptr)))
        self._ptr = _ptr
        self._finalizer = weakref.finalize(self, lib.smtpout_config_unref,
                                           _ptr)

    @classmethod
    def load_file(cls, path):
        ptr = ConfigP()
        err = ctypes.create_string_buffer(_ERRBUF)
        rv = lib.smtpout_config_load_file(ctypes.byref(ptr), _encode(path),
                                          err, _ERRBUF)
        if rv in (Error.CONFIG, Error.IO):
            raise ConfigError(rv, text(err.value))
        check(rv)
        return cls(ptr)

    @classmethod
    def load_string(cls, ini_text, name=None):
        ptr = ConfigP()
        err = ctypes.create_string_buffer(_ERRBUF)
        rv = lib.smtpout_config_load_string(
            ctypes.byref(ptr), _encode(ini_text),
            None if name is None else _encode(name), err, _ERRBUF)
        if rv in (Error.CONFIG, Error.IO):
            raise ConfigError(rv, text(err.value))
        check(rv)
        return cls(ptr)

    @property
    def _as_parameter_(self):
        # Lets a Config be passed where the C API takes smtpout_config *.
        if self._ptr is None:
            raise ValueError("the configuration is closed")
        return self._ptr

    def close(self):
        """Drops this object's reference (idempotent)."""
        self._finalizer()
        self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def timeout(self, which):
        """The timeout of phase `which` (a Timeout) in milliseconds."""
        return lib.smtpout_config_timeout(self, int(Timeout(which)))

    @property
    def helo_name(self) -> Optional[str]:
        return text(lib.smtpout_config_helo_name(self))

    @property
    def ca_file(self) -> Optional[str]:
        return text(lib.smtpout_config_ca_file(self))

    @property
    def tls_priority(self) -> str:
        return text(lib.smtpout_config_tls_priority(self))

    def policy(self, domains=(), mx=None) -> Policy:
        """Resolves the policy of recipient `domains` (a name or a list)
        reached through MX host `mx`."""
        if isinstance(domains, (str, bytes)):
            domains = [domains]
        enc = [_encode(d) for d in domains]
        arr = (ctypes.c_char_p * max(len(enc), 1))(*enc)
        p = PolicyP()
        check(lib.smtpout_policy_resolve(
            ctypes.byref(p), self, arr, len(enc),
            None if mx is None else _encode(mx)))
        try:
            return Policy._from_c(p)
        finally:
            lib.smtpout_policy_free(p)
