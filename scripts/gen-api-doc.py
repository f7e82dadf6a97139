#!/usr/bin/env python3
"""Generate docs/api.md from core/include/ember.h: every type and function with the
comment that precedes it. `--check` fails when docs/api.md is not up to date."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HDR = ROOT / "core/include/ember.h"
OUT = ROOT / "docs/api.md"


def generate() -> str:
    text = HDR.read_text()
    lines = text.splitlines()
    out = ["# ember.h API reference", "",
           "Generated from `core/include/ember.h` by `scripts/gen-api-doc.py`; the header is",
           "the source of truth. Conventions (status codes, ownership, threads) are in the",
           "header's opening comment, repeated here:", ""]
    # opening comment
    m = re.search(r"/\*(.*?)\*/", text, re.S)
    if m:
        out += ["```", "\n".join(l.strip().lstrip("*").rstrip() for l in m.group(1).strip().splitlines()), "```", ""]
    comment: list[str] = []
    i = 0
    in_comment = False
    section = None
    while i < len(lines):
        l = lines[i].rstrip()
        s = l.strip()
        sec = re.match(r"/\* -+ (.*?) \*/", s)
        if sec:
            section = sec.group(1)
            out += [f"## {section}", ""]
            comment = []
            i += 1
            continue
        if s.startswith("/*") and not in_comment:
            comment = [s]
            in_comment = not s.endswith("*/")
            i += 1
            continue
        if in_comment:
            comment.append(s)
            in_comment = not s.endswith("*/")
            i += 1
            continue
        if s.startswith("EMBER_API") or s.startswith("typedef") or (s.startswith("enum") and section):
            decl = [l]
            depth = l.count("{") - l.count("}")
            while (depth > 0 or not decl[-1].rstrip().endswith(";")) and i + 1 < len(lines):
                i += 1
                decl.append(lines[i].rstrip())
                depth += lines[i].count("{") - lines[i].count("}")
            if section:
                out += ["```c", "\n".join(decl), "```"]
                if comment:
                    body = " ".join(c.strip("/* ").strip() for c in comment).strip()
                    out += ["", body]
                out += [""]
            comment = []
        elif s == "":
            pass
        else:
            comment = []
        i += 1
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    doc = generate()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != doc:
            print("docs/api.md is out of date: run scripts/gen-api-doc.py")
            return 1
        n = doc.count("```c")
        print(f"api-doc: {n} declarations documented; 1 passed, 0 failed")
        return 0
    OUT.write_text(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
