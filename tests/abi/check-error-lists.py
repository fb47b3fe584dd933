#!/usr/bin/python3
"""The error lists of include/smtpout/*.h are a contract: every public
function's comment lists exactly the codes it can return.

    check-error-lists.py INCLUDE_DIR LIB_DIR TEST_ERROR_LISTS_C

For each public function it compares the codes its comment lists with
the codes the library's source can make it return, found by following
its return statements: a code returned as it is, what a called library
function returns, a variable or a field assigned from either, and what
a called function stores through a pointer to one of its variables.
That is an over-approximation (a branch that cannot be taken still
counts), so a list that names a code the source cannot return is wrong
("impossible"), and a code the source can return that the list lacks is
missing.  For the session functions it also checks that
tests/test_error_lists.c drives the function into every listed code.
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from publicapi import Tap  # noqa: E402

CODE = re.compile(r"\bSMTPOUT_ERR_([A-Z_]+)\b")

# Where following the source finds a code a function cannot return in
# fact, and why: each entry is a claim a reader can check.
CANNOT = {
    ("smtpout_route_hop_tlsrpt", "BAD_NAME"):
        "tlsrpt_event_write() refuses a name that is not one, and every "
        "name it gets here is the route's own, normalised already",
    ("smtpout_session_new_for_hop", "BAD_NAME"):
        "smtpout_session_new() normalises the hop's MX name, which the "
        "route normalised already (route.c host_name(), the domain, a "
        "relay host from the configuration) or is an address in "
        "canonical form: normalising it again cannot fail",
    ("smtpout_session_new_for_hop", "INVALID_STATE"):
        "relay_setup() calls the implicit TLS, AUTH and client certificate "
        "setters on the session just made: it is in ST_INIT, without a "
        "plaintext fallback, so their state checks cannot fail",
}
COMMENT = re.compile(r"/\*.*?\*/", re.S)


def public_codes(include_dir):
    """The names in enum smtpout_error, without the SMTPOUT_ERR_ prefix."""
    text = open(os.path.join(include_dir, "smtpout", "common.h")).read()
    body = re.search(r"enum smtpout_error\s*\{(.*?)\}", text, re.S).group(1)
    return set(re.findall(r"\bSMTPOUT_ERR_([A-Z_]+)\s*=",
                          COMMENT.sub(" ", body)))


def documented(include_dir, names):
    """{function: set of listed codes} from the comment before each
    SMTPOUT_EXTERN declaration (consecutive declarations share one).  A
    code is listed as SMTPOUT_ERR_X anywhere in the comment, or as X in
    an "Errors:" list."""
    lists = {}
    for path in sorted(glob.glob(os.path.join(include_dir, "smtpout",
                                              "*.h"))):
        text = open(path).read()
        last = ""
        for m in re.finditer(r"/\*.*?\*/|\bSMTPOUT_EXTERN\b[^;(]*?\b"
                             r"(smtpout_\w+)\s*\(", text, re.S):
            if m.group(0).startswith("/*"):
                # A comment right after the previous declaration (the
                # group is over) starts a new one; comments in between
                # declarations of one group do not happen in these headers.
                last = m.group(0)
                continue
            # The list: from the first "Returns", "returns" or "Errors:"
            # on (a code named before, in prose, is no entry), codes as
            # SMTPOUT_ERR_X, or as X in an "Errors:" list.
            start = re.search(r"\b(?:[Rr]eturns|Errors?:)", last)
            region = last[start.start():] if start else ""
            codes = set(CODE.findall(region))
            errors = re.search(r"\bErrors?:(.*)", region, re.S)
            if errors:
                words = set(re.findall(r"\b([A-Z][A-Z_]+)\b",
                                       errors.group(1)))
                codes |= words & names
            lists[m.group(1)] = codes
    return lists


# A definition: its body ends at the first "}" in the first column, or it
# is all on one line.
FUNC = re.compile(r"^(?P<static>static\s+)?(?:inline\s+)?"
                  r"[A-Za-z_][\w \t\*]*?\b(?P<name>\w+)\s*"
                  r"\((?P<params>[^;{}]*?)\)\s*"
                  r"(?:\n\{(?P<body>.*?)\n\}|\{(?P<line>[^\n]*)\}[ \t]*$)",
                  re.M | re.S)


class Source:
    """The library's function definitions and what they can return."""

    def __init__(self, lib_dir):
        self.funcs = {}   # (file or None, name) -> (file, params, body)
        self.files = {}
        for path in sorted(glob.glob(os.path.join(lib_dir, "*.c"))):
            text = COMMENT.sub(" ", open(path).read())
            text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
            # A guard that passes one code on: "if (rc == X) return rc;"
            # and "rc == X ? rc : 0" return X alone.
            text = re.sub(r"if\s*\(\s*(\w+)\s*==\s*(SMTPOUT_ERR_\w+)\s*\)"
                          r"\s*return\s+\1\s*;", r"return \2;", text)
            text = re.sub(r"\b(\w+)\s*==\s*(SMTPOUT_ERR_\w+)\s*\?\s*\1\s*:",
                          r"\2 :", text)
            self.files[path] = text
            for m in FUNC.finditer(text):
                key = (path if m.group("static") else None, m.group("name"))
                body = m.group("body")
                if body is None:
                    body = m.group("line")
                self.funcs[key] = (path, m.group("params"), body)
        self.memo = {}

    def lookup(self, path, name):
        return self.funcs.get((path, name)) or self.funcs.get((None, name))

    def returns(self, path, name, stack=()):
        f = self.lookup(path, name)
        if f is None or (f[0], name) in stack:
            return set()
        key = (f[0], name)
        if key in self.memo:
            return self.memo[key]
        stack = stack + (key,)
        fpath, params, body = f
        codes = set()
        for expr in re.findall(r"\breturn\b([^;]*);", body):
            codes |= self.eval(fpath, body, expr, stack, set())
        self.memo[key] = codes
        return codes

    def eval(self, path, body, expr, stack, seen):
        """The codes an expression in `body` (of a function of `path`)
        can have: those of its values (the branches of a conditional; a
        comparison or a logical operation is 0 or 1)."""
        parts = values(expr)
        if len(parts) != 1 or parts[0] is not expr:
            codes = set()
            for p in parts:
                codes |= self.eval(path, body, p, stack, seen)
            return codes
        codes = set(CODE.findall(expr))
        codes |= {"INTERNAL_" + c for c in
                  re.findall(r"(?<![\w])ERR_([A-Z_]+)\b", expr)}
        for callee in re.findall(r"(?<![\w.>])(\w+)\s*\(", expr):
            codes |= self.returns(path, callee, stack)
        # A call through the TLS seam (s->tls_be->X(), be->X()) runs the
        # library backend's tls_conn_X() (lib/tls_gnutls.c).
        for member in re.findall(r"\b(?:tls_be|be)->(\w+)\s*\(", expr):
            codes |= self.returns(path, "tls_conn_" + member, stack)
        for var in set(re.findall(r"(?<![\w.>])([a-z_]\w*)\b(?!\s*\()",
                                  expr)):
            if var in seen:
                continue
            seen.add(var)
            for rhs in re.findall(r"(?<![\w.>*])%s\s*=(?!=)([^;]*);" %
                                  re.escape(var), body):
                codes |= self.eval(path, body, rhs, stack, seen)
            codes |= self.out_params(path, body, var, stack, seen)
        for field in set(re.findall(r"(?:\.|->)(\w+)\b(?!\s*\()", expr)):
            if ("field", field) in seen:
                continue
            seen.add(("field", field))
            text = self.files[path]
            for m in re.finditer(r"(?:\.|->)%s\s*=(?!=)([^;]*);" %
                                 re.escape(field), text):
                owner = self.enclosing(path, m.start())
                if owner is not None:
                    codes |= self.eval(path, owner, m.group(1), stack,
                                       set(seen))
        return codes

    def out_params(self, path, body, var, stack, seen):
        """What called functions store through &var.  The fields already
        followed stay followed (a field assigned from a variable that a
        call fills from the same field is a cycle, not more codes)."""
        fields = {k for k in seen if isinstance(k, tuple)}
        codes = set()
        for m in re.finditer(r"(?<![\w.>])(\w+)\s*\(", body):
            f = self.lookup(path, m.group(1))
            if f is None:
                continue
            args = split_args(balanced(body, m.end()))
            if not any(a.strip() == "&" + var for a in args):
                continue
            params = split_args(f[1])
            for i, a in enumerate(args):
                if a.strip() != "&" + var or i >= len(params):
                    continue
                pname = re.findall(r"(\w+)\s*$", params[i])
                if not pname:
                    continue
                for rhs in re.findall(r"\*%s\s*=(?!=)([^;]*);" %
                                      re.escape(pname[0]), f[2]):
                    codes |= self.eval(f[0], f[2], rhs, stack,
                                       set(fields))
        return codes

    def enclosing(self, path, pos):
        """The body of the function of `path` that holds offset `pos`."""
        text = self.files[path]
        for m in FUNC.finditer(text):
            if m.start() <= pos < m.end():
                return m.group("body") or m.group("line")
        return None


def top_level(expr):
    """`expr` with every parenthesised part blanked out."""
    out, depth = [], 0
    for ch in expr:
        if ch == "(":
            depth += 1
        out.append(ch if depth == 0 else " ")
        if ch == ")":
            depth -= 1
    return "".join(out)


def values(expr):
    """The sub-expressions `expr` takes its value from: the two branches of
    a top-level conditional, none for a comparison or logical operation
    (its value is 0 or 1), else `expr` itself."""
    top = top_level(expr)
    q = top.find("?")
    if q >= 0:
        c = top.find(":", q)
        if c < 0:
            return [expr]
        return values(expr[q + 1:c]) + values(expr[c + 1:])
    stripped = expr.strip()
    while stripped.startswith("(") and stripped.endswith(")") and \
            top_level(stripped).strip() == "":
        stripped = stripped[1:-1].strip()
    if stripped != expr.strip():
        return values(stripped)
    if re.search(r"==|!=|<=|>=|&&|\|\||(?<![-<])<(?!<)|(?<![->])>(?!>)|"
                 r"^\s*!", top):
        return []
    return [expr]


def balanced(text, pos):
    """The text from `pos` (just after an opening parenthesis) to its
    closing one."""
    depth = 1
    for i in range(pos, len(text)):
        depth += text[i] == "(" and 1 or 0
        depth -= text[i] == ")" and 1 or 0
        if depth == 0:
            return text[pos:i]
    return text[pos:]


def split_args(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch in "([" and 1 or 0
        depth -= ch in ")]" and 1 or 0
        cur += ch
    if cur.strip():
        out.append(cur)
    return out


def reached(test_c):
    """{function: codes} tests/test_error_lists.c drives it into."""
    text = COMMENT.sub(" ", open(test_c).read())
    got = {}
    for fn, code in re.findall(r"\bERR\(\s*(smtpout_\w+)\s*,\s*"
                               r"SMTPOUT_ERR_([A-Z_]+)", text):
        got.setdefault(fn, set()).add(code)
    for m in re.finditer(r"\bNOMEM_CASE\(\s*(smtpout_\w+)\s*,[^,]*,[^,]*,"
                         r"([^)]*)\)", text):
        got.setdefault(m.group(1), set()).add("NOMEM")
        got[m.group(1)] |= set(CODE.findall(m.group(2)))
    return got


def main():
    include_dir, lib_dir, test_c = sys.argv[1:4]
    names = public_codes(include_dir)
    docs = documented(include_dir, names)
    src = Source(lib_dir)
    tap = Tap()
    missing, impossible, undefined = [], [], []
    for fn in sorted(docs):
        if src.lookup(None, fn) is None:
            undefined.append(fn)
            continue
        can = src.returns(None, fn)
        internal = sorted(c for c in can if c not in names)
        listed = docs[fn]
        for c in sorted((can & names) - listed):
            if (fn, c) in CANNOT:
                continue
            missing.append("%s can return SMTPOUT_ERR_%s" % (fn, c))
        for c in internal:
            missing.append("%s can return %s, which is no public code"
                           % (fn, c))
        for c in sorted(listed - can):
            impossible.append("%s lists SMTPOUT_ERR_%s" % (fn, c))
    tap.check(not undefined, "every public function has a definition in "
              "lib/ (%d)" % len(docs), undefined)
    tap.check(not missing, "every code a public function can return is in "
              "its header comment", missing)
    for (fn, c), why in sorted(CANNOT.items()):
        print("# %s cannot return SMTPOUT_ERR_%s: %s" % (fn, c, why))
    tap.check(not impossible, "no header comment lists a code its function "
              "cannot return", impossible)

    got = reached(test_c)
    session = sorted(fn for fn in docs
                     if docs[fn] and (fn.startswith("smtpout_session_") or
                                      fn.startswith("smtpout_callbacks_") or
                                      fn == "smtpout_address_check"))
    unreached = ["%s: SMTPOUT_ERR_%s" % (fn, c) for fn in session
                 for c in sorted(docs[fn] - got.get(fn, set()))]
    unlisted = ["%s: SMTPOUT_ERR_%s" % (fn, c) for fn in sorted(got)
                for c in sorted(got[fn] - docs.get(fn, set()))]
    tap.check(session and not unreached, "test_error_lists.c drives every "
              "session function into every code it lists (%d functions)"
              % len(session), unreached)
    tap.check(not unlisted, "test_error_lists.c reaches no code the header "
              "does not list", unlisted)
    tap.done()


if __name__ == "__main__":
    main()
