#!/usr/bin/python3
"""ABI hygiene of the shared library (the libxkbcommon symbols-leak test,
plus the version node and SONAME):

  - the dynamic symbols it defines == the map's global list
    == the functions the public headers declare with SMTPOUT_EXTERN;
  - every public prototype carries SMTPOUT_EXTERN;
  - nothing but smtpout_* is exported, each bound to the map's node;
  - the SONAME is libsmtpout.so.<soversion>.

    check-symbols.py LIBSMTPOUT.SO SMTPOUT.MAP INCLUDE_DIR SOVERSION
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from publicapi import (Tap, exported_declarations,  # noqa: E402
                       function_declarations, header_text, map_globals)


def dynamic_symbols(so):
    """{name: version} of the defined dynamic symbols (readelf --dyn-syms
    prints name@@VERSION for a default version)."""
    out = subprocess.run(["readelf", "--wide", "--dyn-syms", so],
                         capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) < 8 or not f[0].endswith(":") or f[6] == "UND":
            continue
        if f[4] not in ("GLOBAL", "WEAK"):
            continue
        name, _, version = f[7].partition("@")
        syms[name] = version.lstrip("@")
    return syms


def main():
    so, map_path, include_dir, soversion = sys.argv[1:5]
    tap = Tap()
    text = header_text(include_dir)
    declared = exported_declarations(text)
    nodes = map_globals(map_path)
    mapped = set().union(*nodes.values()) if nodes else set()
    dyn = dynamic_symbols(so)
    # The version node itself is an absolute symbol named after the node.
    exported = {n for n in dyn if n not in nodes}

    tap.check(len(nodes) >= 1 and all(re.match(r"SMTPOUT_\d+\.\d+$", n)
                                      for n in nodes),
              "the version script has SMTPOUT_x.y version nodes",
              ["nodes: %s" % sorted(nodes)])
    tap.same(exported, mapped, "exported symbols == the map",
             "the library", "the map")
    tap.same(mapped, declared, "the map == SMTPOUT_EXTERN declarations",
             "the map", "the headers")
    tap.same(function_declarations(text), declared,
             "every public prototype carries SMTPOUT_EXTERN",
             "prototypes", "SMTPOUT_EXTERN ones")
    foreign = sorted(n for n in exported if not n.startswith("smtpout_"))
    tap.check(not foreign, "nothing but smtpout_* is exported", foreign)
    node_of = {s: n for n, syms in nodes.items() for s in syms}
    unversioned = sorted(n for n in exported
                         if dyn[n] != node_of.get(n, "?"))
    tap.check(not unversioned, "every symbol is bound to its version node",
              ["%s@%s" % (n, dyn[n]) for n in unversioned])
    dyn_section = subprocess.run(["readelf", "-d", so], capture_output=True,
                                 text=True, check=True).stdout
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.*?)\]",
                       dyn_section)
    tap.check(soname and soname.group(1) == "libsmtpout.so." + soversion,
              "SONAME is libsmtpout.so." + soversion,
              [soname.group(1) if soname else "no SONAME"])
    tap.done()


if __name__ == "__main__":
    main()
