"""What the public headers declare, read from include/smtpout/*.h: shared
by the symbol and documentation checks."""
import glob
import os
import re

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def header_text(include_dir):
    """The text of every public header, comments removed."""
    paths = sorted(glob.glob(os.path.join(include_dir, "smtpout", "*.h")))
    if not paths:
        raise SystemExit("no headers under %s" % include_dir)
    return "\n".join(_COMMENT.sub(" ", open(p).read()) for p in paths)


def exported_declarations(text):
    """Functions declared with SMTPOUT_EXTERN (the declaration may span
    lines: the return type on one, the name on the next)."""
    return set(re.findall(r"\bSMTPOUT_EXTERN\b[^;(]*?\b(smtpout_\w+)\s*\(",
                          text))


def function_declarations(text):
    """Every smtpout_* function prototype, with or without SMTPOUT_EXTERN:
    a name followed by "(" (a function-pointer typedef's name is followed
    by ")", and the headers hold no code)."""
    return set(re.findall(r"\b(smtpout_\w+)\s*\(", text))


def callback_typedefs(text):
    return set(re.findall(r"\(\s*\*\s*(smtpout_\w+)\s*\)", text))


def public_constants(text):
    """Enumeration constants and #define'd constants, without include
    guards and the build-internal macros."""
    enums = set()
    for body in re.findall(r"\benum\s+\w+\s*\{(.*?)\}", text, re.S):
        enums |= set(re.findall(r"\b(SMTPOUT_[A-Z0-9_]+)\s*=", body))
    defines = set(re.findall(r"^\s*#\s*define\s+(SMTPOUT_[A-Z0-9_]+)\s+\S",
                             text, re.M))
    internal = {"SMTPOUT_EXTERN"}
    return enums | {d for d in defines
                    if d not in internal and not d.endswith("_H")}


def map_globals(map_path):
    """{version node: set of symbols} of a linker version script."""
    text = _COMMENT.sub(" ", open(map_path).read())
    nodes = {}
    for node, body in re.findall(r"([\w.]+)\s*\{(.*?)\}\s*[\w.\s]*;", text,
                                 re.S):
        glob_part = re.split(r"\blocal\s*:", body)[0]
        glob_part = re.sub(r"\bglobal\s*:", "", glob_part)
        nodes[node] = set(re.findall(r"\b(\w+)\s*;", glob_part))
    return nodes


class Tap:
    """Minimal TAP output: one line per check, the plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, name, diag=()):
        self.n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        if not ok:
            self.failed += 1
            for line in diag:
                print("# " + line)

    def same(self, a, b, name, a_name, b_name):
        self.check(a == b, name,
                   ["only in %s: %s" % (a_name, ", ".join(sorted(a - b))),
                    "only in %s: %s" % (b_name, ", ".join(sorted(b - a)))])

    def done(self):
        print("1..%d" % self.n)
        raise SystemExit(1 if self.failed else 0)
