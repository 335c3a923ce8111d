#!/usr/bin/env python3
"""check_layers.py must fail where the rule is broken: a tiny tree of two
layers (low < high) built with the C compiler, once right, then with an
upward call, an upward include and a tool including a lib/ header.

usage: selftest_layers.py CHECK_LAYERS_PY CC
"""
import os
import subprocess
import sys
import tempfile

FILES = {
    "lib/LAYERS": "low\nhigh\n",
    "lib/low/low.h": "int low_fn(void);\n",
    "lib/low/a.c": '#include "low/low.h"\nint low_fn(void) { return 1; }\n',
    "lib/high/high.h": '#include "low/low.h"\nint high_fn(void);\n',
    "lib/high/b.c": '#include "high/high.h"\nint high_fn(void) { return low_fn() + 1; }\n',
    "tools/t.c": "int main(void) { return 0; }\n",
}
BROKEN = {
    "upward call": ("lib/low/a.c", 'int high_fn(void);\nint low_fn(void) { return high_fn(); }\n',
                    "uses high_fn of high/b.c.o (layer high): an arrow pointing up"),
    "upward include": ("lib/low/a.c", '#include "high/high.h"\nint low_fn(void) { return 1; }\n',
                       "includes high/high.h: a header of a higher layer"),
    "tool on a lib/ header": ("tools/t.c", '#include "low/low.h"\nint main(void) { return 0; }\n',
                              "tools use only include/mpinotify.h"),
}


def build(src, obj, cc):
    for layer, name in (("low", "a.c"), ("high", "b.c")):
        os.makedirs(os.path.join(obj, layer), exist_ok=True)
        subprocess.run([cc, "-c", "-I", os.path.join(src, "lib"), os.path.join(src, "lib", layer, name), "-o",
                        os.path.join(obj, layer, name + ".o")], check=True)


def check(tool, files, cc, tmp):
    src, obj = os.path.join(tmp, "src"), os.path.join(tmp, "obj")
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        with open(os.path.join(src, rel), "w") as f:
            f.write(text)
    build(src, obj, cc)
    r = subprocess.run([sys.executable, tool, src, obj], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    tool, cc = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        rc, out = check(tool, FILES, cc, tmp)
        if rc != 0:
            failures.append("a tree that keeps the rule was refused:\n" + out)
    for what, (rel, text, said) in BROKEN.items():
        with tempfile.TemporaryDirectory() as tmp:
            rc, out = check(tool, dict(FILES, **{rel: text}), cc, tmp)
            if rc == 0 or said not in out:
                failures.append("%s: exit %d, expected a failure saying %r:\n%s" % (what, rc, said, out))
    for f in failures:
        print("FAIL " + f)
    if failures:
        sys.exit(1)
    print("check_layers.py refuses an upward call, an upward include and a tool on a lib/ header")


if __name__ == "__main__":
    main()
