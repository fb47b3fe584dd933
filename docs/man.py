#!/usr/bin/python3
"""Writes a tool's manual page (roff, man macros) from its section of
docs/tools.md, so that the page and the document cannot disagree:

    man.py TOOLS.md TOOL VERSION OUTPUT

The section is "## TOOL" up to the next "## ".  It must hold, in order:
an HTML comment "<!-- man: WHAT IT DOES -->" (the NAME line), the
description, a fenced block without a language (the SYNOPSIS), and
optionally a table headed "option | meaning" (OPTIONS); every "### Title"
after them becomes a section TITLE.  The Markdown used is a small subset:
paragraphs, fenced blocks, two-column tables, "-" and "1." lists,
`code`, **bold**, *italic* and [links](...).  Anything else is an error
that stops the build, rather than a page that renders it wrongly.

Standard library only: it runs at build time with the Python that runs
meson or Debian's /usr/bin/python3.
"""
import re
import sys


class ManError(Exception):
    pass


def escape(text):
    """Roff-escapes plain text: backslashes, hyphens as \\- (so options
    copy as ASCII "-"), and every non-ASCII character as \\[uXXXX]."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ord(ch) > 126 or (ord(ch) < 32 and ch != "\t"):
            out.append("\\[u%04X]" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s][^*]*)\*"
                    r"|\[([^\]]+)\]\(([^)]+)\)")


def inline(text):
    """Markdown inline markup to roff."""
    out, pos = [], 0
    for m in INLINE.finditer(text):
        out.append(escape(text[pos:m.start()]))
        code, bold, italic, ltext, url = m.groups()
        if code is not None:
            out.append("\\fB" + escape(code) + "\\fR")
        elif bold is not None:
            out.append("\\fB" + inline(bold) + "\\fR")
        elif italic is not None:
            out.append("\\fI" + inline(italic) + "\\fR")
        else:
            out.append(inline(ltext))
            if url.startswith(("http://", "https://")):
                out.append(" <" + escape(url) + ">")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def line_safe(line):
    """A text line must not start with a control character."""
    return "\\&" + line if line.startswith((".", "'")) else line


def cells(row):
    row = row.strip()
    if not (row.startswith("|") and row.endswith("|")):
        raise ManError("table row without enclosing pipes: %r" % row)
    parts = re.split(r"(?<!\\)\|", row[1:-1])
    return [p.strip().replace("\\|", "|") for p in parts]


def blocks(lines):
    """Splits Markdown lines into (kind, payload) blocks."""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            lang = line[3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if j == len(lines):
                raise ManError("unterminated code block")
            yield ("code", (lang, lines[i + 1:j]))
            i = j + 1
        elif line.startswith("<!--"):
            j = i
            while "-->" not in lines[j]:
                j += 1
            yield ("comment", " ".join(lines[i:j + 1]))
            i = j + 1
        elif line.startswith("### "):
            yield ("heading", line[4:].strip())
            i += 1
        elif line.startswith("#"):
            raise ManError("unexpected heading: %r" % line)
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            rows = [cells(r) for r in lines[i:j]]
            if len(rows) < 2 or not all(re.fullmatch(r":?-+:?", c)
                                        for c in rows[1]):
                raise ManError("table without a header rule: %r" % line)
            if any(len(r) != 2 for r in rows):
                raise ManError("only two-column tables are supported: %r"
                               % line)
            yield ("table", (rows[0], rows[2:]))
            i = j
        elif re.match(r"(- |\d+\. )", line):
            items = []
            while i < len(lines) and (re.match(r"(- |\d+\. )", lines[i]) or
                                      lines[i].startswith("  ")):
                if lines[i].startswith("  "):
                    items[-1] += " " + lines[i].strip()
                else:
                    items.append(lines[i])
                i += 1
            yield ("list", items)
        else:
            j = i
            while (j < len(lines) and lines[j].strip() and
                   not lines[j].startswith(("```", "|", "#", "<!--", "- ")) and
                   not re.match(r"\d+\. ", lines[j])):
                j += 1
            yield ("para", lines[i:j])
            i = j


def render_block(kind, payload, out):
    if kind == "para":
        # Joined first: inline markup may span the source's lines.
        out.append(".PP")
        out.append(line_safe(inline(" ".join(l.strip() for l in payload))))
    elif kind == "code":
        out += [".PP", ".RS 4", ".nf"]
        out.extend(line_safe(escape(l)) for l in payload[1])
        out += [".fi", ".RE"]
    elif kind == "table":
        for tag, body in payload[1]:
            out += [".TP", line_safe(inline(tag)), line_safe(inline(body))]
    elif kind == "list":
        for item in payload:
            m = re.match(r"(- |(\d+)\. )(.*)", item)
            out.append(".IP \\(bu 2" if m.group(2) is None
                       else ".IP %s. 4" % m.group(2))
            out.append(line_safe(inline(m.group(3))))
    elif kind == "comment":
        pass
    else:
        raise ManError("unexpected %s" % kind)


def section(md, tool):
    lines = md.split("\n")
    try:
        start = lines.index("## " + tool) + 1
    except ValueError:
        raise ManError("no section \"## %s\"" % tool)
    end = start
    while end < len(lines) and not lines[end].startswith("## "):
        end += 1
    return lines[start:end]


def manpage(md, tool, version, others):
    parts = list(blocks(section(md, tool)))
    if not parts or parts[0][0] != "comment" or \
            not re.fullmatch(r"<!-- man: .+ -->", parts[0][1]):
        raise ManError("%s: the section must open with <!-- man: ... -->"
                       % tool)
    what = parts[0][1][len("<!-- man: "):-len(" -->")]
    out = ['.\\" Generated from docs/tools.md by docs/man.py: edit that.',
           '.TH %s 1 "" "smtpout %s" "smtpout manual"'
           % (tool.upper(), version),
           # No hyphenation: a page full of options and names reads better
           # without words broken at made-up points.
           ".nh",
           ".SH NAME", "%s \\- %s" % (escape(tool), inline(what)),
           ".SH SYNOPSIS"]
    synopsis = next((i for i, (k, p) in enumerate(parts)
                     if k == "code" and p[0] == ""), None)
    if synopsis is None:
        raise ManError("%s: no synopsis block" % tool)
    out.append(".nf")
    out.extend(line_safe(escape(l)) for l in parts[synopsis][1][1])
    out.append(".fi")
    # DESCRIPTION: what comes before the first "###", but the synopsis
    # and the option table, which go to their own sections.
    first_heading = next((i for i, (k, _) in enumerate(parts)
                          if k == "heading"), len(parts))
    options = None
    out.append(".SH DESCRIPTION")
    for i, (kind, payload) in enumerate(parts[1:first_heading], 1):
        if i == synopsis:
            continue
        if kind == "table" and options is None and \
                [c.lower() for c in payload[0]] == ["option", "meaning"]:
            options = payload
            continue
        render_block(kind, payload, out)
    if options is not None:
        out.append(".SH OPTIONS")
        render_block("table", options, out)
    for kind, payload in parts[first_heading:]:
        if kind == "heading":
            out.append(".SH " + escape(payload.upper()))
        else:
            render_block(kind, payload, out)
    out.append(".SH SEE ALSO")
    out.append(", ".join("\\fB%s\\fR(1)" % escape(o) for o in others))
    out.append(".PP")
    out.append("docs/tools.md, docs/configuration.md and docs/policy.md in "
               "smtpout's source.")
    return "\n".join(out) + "\n"


def tools_in(md):
    """Every "## smtpout-..." section name, in order."""
    return re.findall(r"^## (smtpout-[a-z]+)$", md, re.M)


def main(argv):
    if len(argv) != 5:
        sys.stderr.write("usage: man.py TOOLS.md TOOL VERSION OUTPUT\n")
        return 64
    src, tool, version, output = argv[1:]
    with open(src, encoding="utf-8") as f:
        md = f.read()
    others = [t for t in tools_in(md) if t != tool]
    try:
        page = manpage(md, tool, version, others)
    except ManError as e:
        sys.stderr.write("%s: %s\n" % (src, e))
        return 65
    with open(output, "w", encoding="ascii") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
