#!/usr/bin/env python3
"""Checks that every relative link and anchor in the documentation resolves.

Reads README.md, ARCHITECTURE.md and docs/*.md (or the files given as arguments), finds
every Markdown link outside code (inline `[text](target)` and reference definitions
`[label]: target`), and for each relative target checks that the file or directory
exists and, when the target carries `#anchor` into a Markdown file, that the file has a
heading (or an explicit `id`/`name`) with that anchor under GitHub's slug rules:
lower case, every character but letters, digits, `-`, `_` and spaces removed, spaces
turned into `-`, and `-1`, `-2`, ... appended to repeated slugs.
External links (with a scheme, e.g. https:) are not fetched. Exits 1 naming every
broken link as FILE:LINE: TARGET: REASON.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text):
    """(line number, line) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in "-_ ")
    return text.replace(" ", "-")


def anchors(path, cache={}):
    """Every anchor a Markdown file defines."""
    if path not in cache:
        seen = {}
        found = set()
        for _, line in prose_lines(path.read_text(encoding="utf-8")):
            found.update(HTML_ANCHOR.findall(line))
            match = HEADING.match(line)
            if not match:
                continue
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        cache[path] = found
    return cache[path]


def links(path):
    """(line number, target) of every link in a Markdown file, outside code."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        definition = REFERENCE_DEF.match(line)
        if definition:
            yield number, definition.group(1)
            continue
        without_code = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for match in INLINE_LINK.finditer(without_code):
            yield number, match.group(1)


def shown(path):
    """A path as the messages name it: relative to the repository when inside it."""
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def problems(path):
    """What is wrong with the links of one file, one message per broken link."""
    for number, target in links(path):
        where = f"{shown(path)}:{number}: {target}"
        if not target:
            yield f"{where}: empty link target"
            continue
        if SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if file_part.startswith("/"):
            yield f"{where}: absolute path; write it relative to {shown(path)}"
            continue
        if not resolved.exists():
            yield f"{where}: no such file or directory"
            continue
        if anchor and resolved.suffix == ".md" and resolved.is_file():
            if anchor not in anchors(resolved):
                yield f"{where}: {shown(resolved)} has no heading with anchor #{anchor}"


def main(arguments):
    if arguments:
        files = [Path(a).resolve() for a in arguments]
    else:
        files = [ROOT / "README.md", ROOT / "ARCHITECTURE.md"]
        files += sorted((ROOT / "docs").glob("*.md"))
    missing = [f for f in files if not f.is_file()]
    for f in missing:
        print(f"{f}: not found", file=sys.stderr)
    broken = [p for f in files if f.is_file() for p in problems(f)]
    for problem in broken:
        print(problem, file=sys.stderr)
    if broken or missing:
        print(f"{len(broken)} broken link(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    count = sum(1 for f in files for _ in links(f))
    print(f"{count} links in {len(files)} files resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
