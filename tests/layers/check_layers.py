#!/usr/bin/env python3
"""The layer rule of lib/ (docs/internals/README.md), checked on the built objects.

Each folder of lib/ is a layer; lib/LAYERS lists them bottom first. An object
may use symbols defined in its own layer or in a layer listed before it,
never one listed after it: every arrow points down, so there is no cycle.
The same rule is checked on the #include lines of lib/'s sources, and on
tools/: they may include only the public header (and tools/ headers).
Only lib/channels/ sees libcurl: no other file of lib/ or tools/ includes
<curl/curl.h> or calls a curl_* function (channels/transfer.c moves the
engine's transfers and parses URLs for the layers above).

Every symbol the library's objects define counts (mpn_*, the interposed
MPI_* entry points...), except the libc functions the library interposes
(INTERPOSED): a call to pthread_create is a call to libc.

usage: check_layers.py SOURCE_DIR OBJECT_DIR [--graph] [OBJECT...]
  OBJECT...: the objects to check (CMake's $<TARGET_OBJECTS:...>); default:
  every .o under OBJECT_DIR.
"""
import os
import re
import subprocess
import sys


def layers(src):
    with open(os.path.join(src, "lib", "LAYERS")) as f:
        names = [l.split("#")[0].strip() for l in f]
    return {n: i for i, n in enumerate(n for n in names if n)}


def objects(objdir, listed):
    if listed:
        yield from listed
        return
    for root, _, files in os.walk(objdir):
        for f in files:
            if f.endswith(".o"):
                yield os.path.join(root, f)


def layer_of(path, base, order):
    rel = os.path.relpath(path, base).split(os.sep)
    return rel[0] if rel[0] in order else None


INTERPOSED = {"pthread_create"}


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if name in INTERPOSED:
            continue
        if kind in "Uwv":
            used.add(name)
        elif kind in "TDBRVWGSC":
            defined.add(name)
    return defined, used


def check_objects(src, objdir, order, graph, listed):
    owner, uses = {}, {}
    for obj in objects(objdir, listed):
        layer = layer_of(obj, objdir, order)
        if layer is None:
            yield "%s: object outside every layer of lib/LAYERS" % os.path.relpath(obj, objdir)
            continue
        defined, used = symbols(obj)
        name = os.path.relpath(obj, objdir)
        for s in defined:
            owner[s] = (layer, name)
        uses[name] = (layer, used)
    edges = {}
    for name, (layer, used) in sorted(uses.items()):
        for s in sorted(used):
            if s not in owner:
                continue
            olayer, oname = owner[s]
            if olayer != layer:
                edges.setdefault((layer, olayer), set()).add(s)
            if order[olayer] > order[layer]:
                yield "%s (layer %s) uses %s of %s (layer %s): an arrow pointing up" % (
                    name, layer, s, oname, olayer)
    if graph:
        for (a, b), syms in sorted(edges.items(), key=lambda e: (order[e[0][0]], order[e[0][1]])):
            print("  %-9s -> %-9s %3d  %s" % (a, b, len(syms), " ".join(sorted(syms)[:6])))


INCLUDE = re.compile(r'^\s*#\s*include\s+["<]([^">]+)[">]')


def target_of(inc, root, lib):
    """The lib/ path an include names ("base/base.h"), or None when it is not lib/'s."""
    here, lib = os.path.abspath(os.path.join(root, inc)), os.path.abspath(lib)
    if os.path.exists(here) and os.path.commonpath([here, lib]) == lib:
        return os.path.relpath(here, lib)
    there = os.path.join(lib, inc)
    return os.path.normpath(inc) if os.path.exists(there) else None


def check_includes(src, order):
    lib = os.path.join(src, "lib")
    for root, _, files in os.walk(lib):
        for f in files:
            if not f.endswith((".c", ".h", ".cpp")):
                continue
            path = os.path.join(root, f)
            layer = layer_of(path, lib, order)
            if layer is None:
                continue
            for n, line in enumerate(open(path, encoding="utf-8"), 1):
                m = INCLUDE.match(line)
                if not m or m.group(1) == "mpinotify.h":
                    continue
                inc = target_of(m.group(1), root, lib)
                if inc is None or "/" not in inc:
                    continue
                target, name = inc.split("/")[0], os.path.basename(inc)
                if target not in order:
                    continue
                if order[target] > order[layer]:
                    yield "%s:%d includes %s: a header of a higher layer" % (
                        os.path.relpath(path, src), n, m.group(1))
                elif target != layer and name != target + ".h":
                    yield "%s:%d includes %s: a header private to lib/%s/ (use %s/%s.h)" % (
                        os.path.relpath(path, src), n, m.group(1), target, target, target)
    tools = os.path.join(src, "tools")
    for root, _, files in os.walk(tools):
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(root, f)
            for n, line in enumerate(open(path, encoding="utf-8"), 1):
                m = INCLUDE.match(line)
                inc = target_of(m.group(1), root, lib) if m else None
                if inc and inc.split("/")[0] in order:
                    yield "%s:%d includes %s: tools use only include/mpinotify.h" % (
                        os.path.relpath(path, src), n, m.group(1))


CURL_LAYER = "channels"
CURL_USE = re.compile(r'^\s*#\s*include\s*<curl/|\bcurl_\w+\s*\(')


def check_curl(src):
    """libcurl belongs to the channels layer: anywhere else a curl include or call is a leak."""
    for top in ("lib", "tools"):
        for root, _, files in os.walk(os.path.join(src, top)):
            rel = os.path.relpath(root, os.path.join(src, "lib")).split(os.sep)[0]
            if top == "lib" and rel == CURL_LAYER:
                continue
            for f in files:
                if not f.endswith((".c", ".h", ".cpp")):
                    continue
                path = os.path.join(root, f)
                for n, line in enumerate(open(path, encoding="utf-8"), 1):
                    code = line.split("//")[0]
                    if CURL_USE.search(code) and not code.lstrip().startswith(("*", "/*")):
                        yield "%s:%d uses libcurl: only lib/%s/ may (channels/transfer.c)" % (
                            os.path.relpath(path, src), n, CURL_LAYER)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, objdir, graph = sys.argv[1], sys.argv[2], "--graph" in sys.argv
    listed = [a for a in sys.argv[3:] if a != "--graph"]
    order = layers(src)
    problems = list(check_objects(src, objdir, order, graph, listed)) + list(check_includes(src, order)) + list(check_curl(src))
    for p in problems:
        print("layer rule broken: " + p)
    if problems:
        sys.exit(1)
    print("lib/ layers %s: every arrow points down" % " < ".join(order))


if __name__ == "__main__":
    main()
