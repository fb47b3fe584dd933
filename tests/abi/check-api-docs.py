#!/usr/bin/python3
"""docs/api.md names every public function, callback type and constant of
include/smtpout/*.h (by its full name), and no function that does not
exist.

    check-api-docs.py INCLUDE_DIR API_MD
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from publicapi import (Tap, callback_typedefs,  # noqa: E402
                       exported_declarations, header_text, public_constants)


def mentioned(name, doc):
    return re.search(r"(?<![\w])%s(?![\w])" % re.escape(name), doc)


def main():
    include_dir, api_md = sys.argv[1:3]
    text = header_text(include_dir)
    doc = open(api_md).read()
    tap = Tap()
    functions = exported_declarations(text)
    for what, names in (("function", functions),
                        ("callback type", callback_typedefs(text)),
                        ("constant", public_constants(text))):
        missing = sorted(n for n in names if not mentioned(n, doc))
        tap.check(names and not missing,
                  "every public %s is in docs/api.md (%d)" % (what,
                                                               len(names)),
                  missing)
    stale = sorted(set(re.findall(r"\b(smtpout_\w+)\(", doc)) - functions)
    tap.check(not stale, "docs/api.md names no function that does not exist",
              stale)
    tap.done()


if __name__ == "__main__":
    main()
